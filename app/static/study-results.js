// The study results page: /v1/studies/<name>/results as a table, each win rate drawn with its
// 95% interval against the 0.5 line, and the Bradley-Terry ranking when there is one.
(() => {
  const name = decodeURIComponent(location.pathname.split("/").filter(Boolean)[1] || "");
  const key = new URLSearchParams(location.search).get("key");
  const headers = key ? {"X-API-Key": key} : {};
  const $ = (id) => document.getElementById(id);
  const pct = (x) => `${(100 * x).toFixed(1)}%`;

  function cell(row, text, cls) {
    const td = row.insertCell();
    td.textContent = text;
    if (cls) td.className = cls;
    return td;
  }

  function interval(pair) {
    const box = document.createElement("div");
    box.className = "ci";
    box.innerHTML = '<span class="mid"></span>';
    if (pair.win_rate === null) return box;
    const range = document.createElement("span");
    range.className = "range";
    range.style.left = pct(pair.ci_low);
    range.style.width = pct(pair.ci_high - pair.ci_low);
    const rate = document.createElement("span");
    rate.className = "rate";
    rate.style.left = pct(pair.win_rate);
    box.append(range, rate);
    return box;
  }

  function show(results) {
    $("title").textContent = `Study "${results.study}": results`;
    const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;
    $("summary").textContent = `${plural(results.votes, "vote")} from ` +
      `${plural(results.participants, "participant")}; models: ${results.models.join(", ")}.`;
    const body = $("pairs").tBodies[0];
    body.replaceChildren();
    for (const p of results.pairs) {
      const row = body.insertRow();
      cell(row, `${p.first} vs ${p.second}`);
      cell(row, p.first_wins, "num");
      cell(row, p.second_wins, "num");
      cell(row, p.ties, "num");
      cell(row, p.participants, "num");
      cell(row, p.win_rate === null ? "no decisive votes" :
        `${p.win_rate.toFixed(3)} [${p.ci_low.toFixed(3)}, ${p.ci_high.toFixed(3)}]`, "num");
      row.insertCell().append(interval(p));
    }
    $("pairs").hidden = results.pairs.length === 0;
    if (results.ranking) {
      $("ranking").replaceChildren(...results.ranking.map((r) => {
        const li = document.createElement("li");
        li.textContent = `${r.model}: strength ${r.strength.toFixed(2)}`;
        return li;
      }));
      $("ranking-box").hidden = false;
    }
  }

  fetch(`/v1/studies/${encodeURIComponent(name)}/results`, {headers})
    .then(async (resp) => {
      const body = await resp.json().catch(() => ({}));
      if (!resp.ok) throw new Error((body.error && body.error.message) || `error ${resp.status}`);
      show(body);
    })
    .catch((err) => {
      $("error").textContent = String(err.message || err);
      $("error").hidden = false;
      $("summary").textContent = "";
    });
})();
