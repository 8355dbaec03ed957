"""Score the teacher and copies of it fine-tuned by benchmarks/voice_lstm_experiment.py on a
fold's unseen singers: `--mode utterance` the way a user runs Resemblyzer (`embed_utterance` of
the whole clip), `--mode chunks` over 1 s chunks pooled like CVSM's track embedding."""
import argparse
import json
from pathlib import Path

import torch

from model.evaluation.baselines import ResemblyzerExtractor
from model.evaluation.data import load_corpus
from model.evaluation.folds import fold_singers
from model.evaluation.run import EvalConfig, score_system

p = argparse.ArgumentParser()
p.add_argument("--fold", required=True)
p.add_argument("--data", required=True)
p.add_argument("--ckpt", nargs="*", default=[])
p.add_argument("--out", type=Path, required=True)
p.add_argument("--mode", default="utterance")
p.add_argument("--no-teacher", action="store_true")
args = p.parse_args()
corpus = load_corpus(args.data, fold_singers(args.fold)[0])
config = EvalConfig.make(True, None, None, "cpu", 1)
res = {}
for ck in ([] if args.no_teacher else ["teacher"]) + args.ckpt:
    system = ResemblyzerExtractor(name=ck, utterance=args.mode == "utterance")
    if ck != "teacher":
        system.encoder.load_state_dict(torch.load(ck)["state"])
    system.encoder.eval()
    results, _ = score_system(corpus, system, config, only_retrieval=True)
    res[ck] = results["retrieval"]
    print(ck, json.dumps(results["retrieval"])[:1500], flush=True)
args.out.parent.mkdir(parents=True, exist_ok=True)
args.out.write_text(json.dumps(res, indent=1))
