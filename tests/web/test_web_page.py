"""The web view in real headless Chromium against a real bcd: error pages for missing, expired, tampered and
wrong-job tokens; a 1000-process job loads (virtualized tree, paged tables) and a process can be picked with
the keyboard; with auth disabled no token is needed and the job list links to each job."""
import os
import subprocess
import tempfile

from webtest import Bcd, ensure_user, probe, require_root, screenshot_dir, token, user_token

require_root("test users and munged")
build = os.environ["BC_BUILD"]
alice, bob = ensure_user("bctest_alice"), ensure_user("bctest_bob")
work = tempfile.mkdtemp(prefix="bc-webpage-")
store = os.path.join(work, "central.lmdb")
subprocess.run([f"{build}/tests/integration/bc-make-store", store, f"41:bctest_alice:{alice}:done:gpu",
                f"43:bctest_bob:{bob}:done"], check=True)
subprocess.run([f"{build}/tests/web/bc-web-store", store, "9", "bctest_alice", str(alice), "1000", "120"], check=True,
               stdout=subprocess.DEVNULL)
shots = screenshot_dir()
bcd = Bcd(store)
open_bcd = None
try:
    page = bcd.base + "/static/index.html"
    # --- error pages, never blank
    cases = [("", "has no access token"), (f"&token={token('job_41', exp=1)}", "expired"),
             (f"&token={token('job_43')}", "does not open this job"),
             (f"&token={token('job_41', key='not-the-secret-0123456')}", "not valid"),
             ("&token=garbage", "not valid")]
    for query, title in cases:
        out = probe(f"{page}?container=job_41{query}")
        assert not out["ready"] and out["error"] and title in out["error"]["title"], (query, out["error"])
    out = probe(f"{page}?container=job_99&token={token('job_99')}")
    assert out["error"]["title"] == "No such job", out["error"]
    out = probe(page, "--screenshot", os.path.join(shots, "error-no-job.png"))
    assert out["error"]["title"] == "No job given", out["error"]
    probe(f"{page}?container=job_41", "--screenshot", os.path.join(shots, "error-no-token.png"))
    print(f"ok {len(cases) + 2} error pages: missing, expired, wrong-job, tampered and garbage tokens, unknown and no job")

    # --- a token for job 41 opens 41
    out = probe(f"{page}?container=job_41&token={token('job_41')}")
    assert out["ready"] and out["fields"]["user"]["value"] == "bctest_alice", out
    assert [(r["pid"], r["level"]) for r in out["tree_rows"]] == [(100, 1), (101, 2)], out["tree_rows"]
    gpu = out["fields"]["gpu:GPU-0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"]
    assert gpu["value"] == "60" and gpu["text"] == "60 % busy, memory peak 2.00G of 80.0G, 250 W", gpu
    print(f"ok a valid token opens its job, with the tree bash -> work and its GPU ({gpu['text']})")
    # Its GPU series (a minute of points, from the second after its start): the GPU's and its worker's.
    answer = bcd.get_json("/api/v1/jobs/41/series?metric=gpu&resolution=s", {"X-Munge-Credential": bcd.cred("root")})
    gpu_series, worker = answer["series"]
    assert gpu_series["key"] == "gpu:n1:0" and gpu_series["label"] == \
        "GPU 0 (GPU-0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0)", gpu_series
    assert len(gpu_series["t"]) == 60 and set(gpu_series["busy_percent_mean"][1:]) == {60}, gpu_series
    assert set(gpu_series["power_watts"][1:]) == {250} and max(gpu_series["memory_max_bytes"]) == 2 << 30, gpu_series
    assert worker["key"] == "n1:2" and worker["label"] == "101 work" and "power_watts" not in worker, worker
    assert set(worker["busy_percent_mean"][1:]) == {50} and set(worker["memory_max_bytes"]) == {3 << 29}, worker
    no_gpu = bcd.get_json("/api/v1/jobs/43/series?metric=gpu", {"X-Munge-Credential": bcd.cred("root")})
    assert no_gpu["series"] == [], no_gpu
    st, body = bcd.get("/api/v1/jobs/41/series?metric=gpu&process=2", {"X-Munge-Credential": bcd.cred("root")})
    assert st == 400 and "metric=gpu takes top=" in body, (st, body)
    assert out["gpu_charts_shown"] == 4 and out["points"]["gpu_util"] == "60x1", out["points"]
    assert out["points"]["gpu_process_memory"] == "60x1" and out["labels_gpu_process_memory"] == "101 work", out
    assert out["points"]["gpu_sm"] == "60x1" and out["points"]["gpu_memory"] == "60x1", out["points"]
    print("ok its GPU series (60% busy, 250 W; the worker at 50% of the SMs, 1.5 GiB) in the API and 4 GPU charts")

    # --- 1000 processes: loads, the tree draws only what is in view, scrolling reaches the last process,
    # Enter on a row selects it and the charts follow; both widths get screenshots.
    out = probe(f"{page}?container=job_9&token={token('job_9')}", "--scroll-tree",
                "--screenshot", os.path.join(shots, "large-desktop.png"))
    assert out["ready"] and out["tree_count"] == "(1000)", out["tree_count"]
    assert 0 < out["tree_dom_rows"] < 60, f"tree not virtualized: {out['tree_dom_rows']} rows in the DOM"
    assert 10999 in out["scrolled_rows"], out["scrolled_rows"]
    assert out["points"]["total"] == "120" and out["points"]["cpu"].startswith("120x"), out["points"]
    assert len(out["files"]) == 100, f"files table not paged: {len(out['files'])} rows"
    assert out["selected"]["chip"].startswith("process ") and "proc=node001%3A" in out["selected"]["url"], out["selected"]
    assert out["selected"]["points"] == "120x1", out["selected"]
    print(f"ok 1000 processes: ready in {out['load_ms']} ms, {out['tree_dom_rows']} tree rows in the DOM, "
          f"last process reached by scrolling, longest task {out['longest_task_ms']:.0f} ms, Enter selects a process")
    out = probe(f"{page}?container=job_9&token={token('job_9')}", "--width", "390",
                "--screenshot", os.path.join(shots, "large-narrow.png"))
    assert out["ready"] and out["canvases"] == 5, out
    # The threads chart: the 8 processes with the most threads at once (6: 4, and 2 more at times) and other.
    assert out["points"]["threads"] == "120x9" and out["labels_threads"].endswith("|other"), out["points"]
    print(f"ok threads chart: {out['points']['threads']} points x lines")
    # zoom kept in the address: a window of 30 s at second resolution
    out = probe(f"{page}?container=job_9&token={token('job_9')}&from=1800000030&to=1800000059&res=s")
    assert out["points"]["total"] == "30", out["points"]
    print("ok narrow width renders; a window in the address gives 30 points")

    # --- auth disabled: no token needed; the job list links to each job
    open_bcd = Bcd(store, auth_disable=True)
    out = probe(open_bcd.base + "/static/index.html?container=job_43")
    assert out["ready"] and out["fields"]["user"]["value"] == "bctest_bob", out
    assert out["gpu_charts_shown"] == 0, "a job without GPUs has no GPU charts"
    out = probe(open_bcd.base + "/static/jobs.html", "--screenshot", os.path.join(shots, "jobs.png"))
    assert out["ready"] and sorted(r[0] for r in out["jobs"]) == ["job_41", "job_43", "job_9"], out["jobs"]
    assert "index.html?container=job_43" in out["links"], out["links"]
    out = probe(bcd.base + "/static/jobs.html")
    assert out["error"] and "who you are" in out["error"]["title"], out
    print("ok AUTH_DISABLE: no token needed, jobs.html lists and links every job; with auth on it explains why not")

    # --- a user token (bcadm token --user): the list of that user's jobs, each link opening its job
    alice_token = user_token("bctest_alice")
    out = probe(f"{bcd.base}/static/jobs.html?token={alice_token}", "--screenshot", os.path.join(shots, "jobs-user.png"))
    assert out["ready"] and sorted(r[0] for r in out["jobs"]) == ["job_41", "job_9"], out["jobs"]
    assert any("container=job_41" in link and alice_token in link for link in out["links"]), out["links"]
    out = probe(f"{page}?container=job_41&token={alice_token}")
    assert out["ready"] and out["fields"]["user"]["value"] == "bctest_alice", out
    out = probe(f"{page}?container=job_43&token={alice_token}")
    assert out["error"], "a user token must not open another user's job"
    out = probe(f"{bcd.base}/static/jobs.html?token={user_token('root')}")
    assert out["ready"] and sorted(r[0] for r in out["jobs"]) == ["job_41", "job_43", "job_9"], out["jobs"]
    print("ok a user token lists that user's jobs (all for root) and opens them, and not another user's job")
finally:
    bcd.stop()
    if open_bcd:
        open_bcd.stop()
    subprocess.run(["rm", "-rf", work])
