// The listening-study page: one trial at a time from /v1/studies/<name>/next, a vote per trial
// to /v1/studies/<name>/votes. The server sets the anonymous participant cookie and decides the
// sides, so the page never knows which model is which.
(() => {
  const name = decodeURIComponent(location.pathname.split("/").filter(Boolean)[1] || "");
  const key = new URLSearchParams(location.search).get("key");
  const headers = key ? {"X-API-Key": key} : {};
  const api = `/v1/studies/${encodeURIComponent(name)}`;
  const $ = (id) => document.getElementById(id);
  let trial = null;

  function fail(message) {
    $("error").textContent = message;
    $("error").hidden = false;
  }

  async function load() {
    const resp = await fetch(`${api}/next`, {headers, credentials: "same-origin"});
    if (!resp.ok) {
      const body = await resp.json().catch(() => ({}));
      return fail((body.error && body.error.message) || `error ${resp.status}`);
    }
    trial = await resp.json();
    if (trial === null) {
      $("trial").hidden = true;
      $("results-link").href = `/study/${encodeURIComponent(name)}/results` +
        (key ? `?key=${encodeURIComponent(key)}` : "");
      $("done").hidden = false;
      $("progress").textContent = "Done.";
      return;
    }
    $("progress").textContent = `Trial ${trial.done + 1} of ${trial.total}`;
    // audio links are signed by the server when the catalog is private
    $("query").src = trial.query_audio_url;
    $("left").src = trial.candidates[0].audio_url;
    $("right").src = trial.candidates[1].audio_url;
    $("comment").value = "";
    $("trial").hidden = false;
  }

  async function vote(choice) {
    const form = new FormData();
    form.append("trial_id", trial.trial_id);
    form.append("choice", choice);
    form.append("comment", $("comment").value);
    const resp = await fetch(`${api}/votes`, {method: "POST", body: form, headers,
                                               credentials: "same-origin"});
    if (!resp.ok && resp.status !== 409) {
      const body = await resp.json().catch(() => ({}));
      return fail((body.error && body.error.message) || `error ${resp.status}`);
    }
    await load();
  }

  document.querySelectorAll("[data-choice]").forEach((button) => {
    button.addEventListener("click", () => vote(button.dataset.choice));
  });
  load().catch((err) => fail(String(err)));
})();
