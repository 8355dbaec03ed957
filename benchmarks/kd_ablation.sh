#!/usr/bin/env bash
# The distillation ablation of one fold (docs/results.md): CVSM-AH on MIR-1K dev, + the extra
# voices, + distillation (CVSM-KD), distillation only; each trained from scratch for the same
# time box on the fold's training singers (and kd_shift, distillation over speed-shifted copies
# of every voice, when asked for by SYSTEMS), then scored (retrieval) on the fold's test singers
# and on the RAVDESS fold. Runs go two at a time (one thread each on a 2-core CPU; on a GPU
# machine set PAIRS=4 THREADS=4 DEVICE=cuda BATCH=128).
#
#   bash benchmarks/kd_ablation.sh A 50 MIR1K_DEV/clips.csv VOICES_EXTRA/clips.csv [RUNS]
#   SYSTEMS="cvsm_ah kd_only" bash benchmarks/kd_ablation.sh B 50 ...   # only some runs
#   STEPS=1650 bash benchmarks/kd_ablation.sh B 600 ...   # a step budget (shared machine)
#   SEED=1 SYSTEMS=kd_track bash benchmarks/kd_ablation.sh A ...  # another seed: runs kd_track_s1
set -euo pipefail
fold=$1 minutes=$2 mir=$3 voices=$4 runs=${5:-runs/ablation}
STEPS=${STEPS:-1000000} SEED=${SEED:-} PAIRS=${PAIRS:-2} THREADS=${THREADS:-1} DEVICE=${DEVICE:-cpu} BATCH=${BATCH:-32}
SYSTEMS=${SYSTEMS:-"cvsm_ah cvsm_ah_extra cvsm_kd kd_only"}
cvsm=${CVSM:-cvsm}
held=$(python -c "from model.evaluation.folds import fold_singers as f; print(','.join(f('$fold')[1]))")
ravdess=$(python -c "from model.evaluation.folds import fold_singers as f; print(','.join(f('ravdess')[1]))")
out=$runs/$fold
mkdir -p "$out"
[ -f "$runs/folds/ravdess/manifest.csv" ] || $cvsm fold-data ravdess --voices "$voices" \
    --accompaniment "$mir" --out "$runs/folds/ravdess"

train() {  # name config data...
  local name=$1 config=$2; shift 2
  local data=() val=$held seed=()
  [ -n "$SEED" ] && seed=(--seed "$SEED") && name=${name}_s$SEED
  for d in "$@"; do data+=(--data "$d"); done
  [ $# -gt 1 ] && val=$held,$ravdess  # the RAVDESS test actors never train
  OMP_NUM_THREADS=$THREADS $cvsm train --config "configs/$config.toml" "${data[@]}" \
      "${seed[@]}" --out "$out/$name" --device "$DEVICE" --steps "$STEPS" --batch-size "$BATCH" \
      --val-artists "$val" --max-minutes "$minutes" --cache-dir "$runs/cache" --workers 2 \
      > "$out/$name.log" 2>&1
}

launch() {
  case $1 in
    cvsm_ah) train cvsm_ah cvsm_ah "$mir" ;;
    cvsm_ah_extra) train cvsm_ah_extra cvsm_ah "$mir" "$voices" ;;
    cvsm_kd) train cvsm_kd cvsm_kd "$mir" "$voices" ;;
    kd_only) train kd_only kd_only "$mir" "$voices" ;;
    kd_shift) train kd_shift kd_shift "$mir" "$voices" ;;  # + speed-shifted copies of voices
    kd_shift6) train kd_shift6 kd_shift6 "$mir" "$voices" ;;  # six shifts (+-6, 12, 18%)
    kd_track) train kd_track kd_track "$mir" "$voices" ;;  # kd_shift, whole-track targets
  esac
}

n=0
for s in $SYSTEMS; do
  launch "$s" &
  n=$((n + 1))
  if [ $((n % PAIRS)) -eq 0 ]; then wait; fi
done
wait
ckpts=()
for s in $SYSTEMS; do ckpts+=("$out/$s${SEED:+_s$SEED}/last.pt"); done
$cvsm evaluate --retrieval-only --checkpoint "${ckpts[@]}" --embedding backbone kd \
    --data "$mir" --fold "$fold" --out "$out/eval" --device "$DEVICE"
$cvsm evaluate --retrieval-only --checkpoint "${ckpts[@]}" --embedding backbone kd \
    --data "$runs/folds/ravdess/manifest.csv" --fold ravdess --out "$out/eval_ravdess" \
    --device "$DEVICE"
echo "done: $out/eval, $out/eval_ravdess (benchmarks/ablation_table.py makes the table)"
