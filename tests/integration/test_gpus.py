"""GPUs through the real plugin and bc-monitor, with the fake NVML of tests/gpu (this machine has no GPU).

plugstack.conf's nvml= names a copy of the fake library, which plays back the script next to it: two GPUs
whose NVML index and minor number differ, one of them (minor 0) the job's, as SLURM_JOB_GPUS says. The job's
program writes its pid to the file the script names, so NVML lists it on that GPU. bcacct must show the job's
GPU with its utilisation, memory and power, the program's GPU memory and SM time, and not the other GPU. A
second job, given a GPU it leaves idle, gets the gpu_idle note. bcd, reading the node store, gives the GPU's
and the program's series over time, the page draws them, and /metrics has a running job's GPU."""
import json
import os
import shutil
import statistics
import time
import urllib.request

from bclib import Cluster
from webtest import Bcd, probe, token

c = Cluster()
work = os.path.join(c.jobs_dir, f"gpus-{os.getpid()}")
os.makedirs(work, exist_ok=True)
os.chmod(work, 0o777)
lib = os.path.join(work, "libnvidia-ml-fake.so")
shutil.copy(os.path.join(c.build, "tests", "gpu", "libbc_fake_nvml.so"), lib)
pid_file = os.path.join(work, "gpu.pid")
GiB = 1 << 30


def script(util):
    with open(lib + ".script", "w") as f:
        f.write(f"""gpu 0 3 GPU-not-the-jobs 85899345920
gpu 1 0 GPU-the-jobs 85899345920
util 0 100
used 0 {4 * GiB}
proc 0 999999 {4 * GiB} 100
util 1 {util}
used 1 {8 * GiB}
power 1 250000
proc 1 pidfile={pid_file} {6 * GiB} 75
""")


def submit(seconds):
    if os.path.exists(pid_file):
        os.unlink(pid_file)
    return c.sbatch(f"#!/bin/bash\nsh -c 'echo $$ > {pid_file}; exec sleep {seconds}'\n",
                    "--export=ALL,SLURM_JOB_GPUS=0")


def run_job(seconds):
    job = submit(seconds)
    state = c.wait_job(job)
    assert state["JobState"] == "COMPLETED", state
    c.wait_monitor_gone(job)
    return job, int(open(pid_file).read())


good = open(os.path.join(c.work, "plugstack.good")).read().strip()
c.plugstack(f"{good} nvml={lib}\n")
try:
    script(80)
    job, pid = run_job(4)
    data = c.bcacct_json(job)
    gpus = data["gpus"]
    assert [g["uuid"] for g in gpus] == ["GPU-the-jobs"], gpus
    g = gpus[0]
    assert g["minor"] == 0 and g["allocated"] is True, g
    assert g["util_percent"] == 80 and g["power_watts"] == 250 and g["memory_max_bytes"] == 8 * GiB, g
    assert g["memory_total_bytes"] == 80 * GiB and g["parent_uuid"] is None, g
    assert data["job"]["gpus"] == 1 and data["job"]["gpu_util_percent"] == 80, data["job"]
    print(f"ok the job's GPU by minor number (NVML's index 1), {g['util_percent']}% busy, {g['power_watts']} W, "
          "not the other GPU")

    procs = {p["pid"]: p for p in data["processes"]}
    assert pid in procs, sorted(procs)
    p = procs[pid]
    assert p["gpu_memory_max_bytes"] == 6 * GiB, p
    assert p["command"] == "sleep", p
    # 75% of the SMs from the second GPU sample on, sampled every 0.2 s over about 4 s of life.
    assert 0.75 * 3 <= p["gpu_sm_seconds"] <= 0.75 * 4.3, p["gpu_sm_seconds"]
    others = [q for q in data["processes"] if q["pid"] != pid]
    assert all(q["gpu_memory_max_bytes"] == 0 and q["gpu_sm_seconds"] == 0 for q in others), others
    print(f"ok the program's GPU memory {p['gpu_memory_max_bytes'] // GiB} GiB and SM time "
          f"{p['gpu_sm_seconds']:.2f} s; the job's other processes none")

    row = c.bcacct("-j", str(job), "-o", "JobID,GPUUtil,GPUMem", "-P", "-n").stdout.strip()
    assert row == f"{job}|80.0%|8G", row
    rows = c.bcacct("-j", str(job), "-o", "PID,GPUMem", "-P", "-n").stdout.split("\n")
    assert f"{pid}|6G" in rows, rows
    report = c.bcacct("-j", str(job)).stdout
    assert "GPU:" in report and "GPU-the-jobs" in report and "util 80.0%" in report, report
    assert "GPU-SM(s)" in report and "GPUMem" in report, report
    print("ok bcacct -o GPUUtil,GPUMem, the GPU line and the process table's GPU columns")

    # Over time, through bcd: a point a second of the GPU and of the program. The monitor samples every 0.2 s
    # and a second keeps its last sample, so each second's figure covers 0.8 to 1.2 s of sampling: their mean
    # is within a fifth of the scripted figure (the job's total above is exact).
    bcd = Bcd(c.store)
    try:
        root = {"X-Munge-Credential": bcd.cred("root")}
        gpu_s, prog = bcd.get_json(f"/api/v1/jobs/{job}/series?metric=gpu&resolution=s", root)["series"]
        assert gpu_s["label"] == "GPU 0 (GPU-the-jobs)" and len(gpu_s["t"]) >= 3, gpu_s
        busy, watts = gpu_s["busy_percent_mean"][1:], gpu_s["power_watts"][1:]
        assert abs(statistics.mean(busy) - 80) <= 16 and abs(statistics.mean(watts) - 250) <= 50, gpu_s
        assert set(gpu_s["memory_max_bytes"]) == {8 * GiB}, gpu_s
        assert prog["label"] == f"{pid} sleep" and set(prog["memory_max_bytes"][:-1]) == {6 * GiB}, prog
        assert abs(statistics.mean(prog["busy_percent_mean"][2:-1]) - 75) <= 15, prog
        print(f"ok the GPU's series ({len(gpu_s['t'])} points, {statistics.mean(busy):.1f}% busy, "
              f"{statistics.mean(watts):.0f} W) and the program's ({statistics.mean(prog['busy_percent_mean'][2:-1]):.1f}% "
              "of the SMs, 6 GiB) from bcd")
        out = probe(f"{bcd.base}/static/index.html?container=job_{job}&token={token(f'job_{job}')}")
        assert out["ready"] and out["gpu_charts_shown"] == 4, out
        assert out["labels_gpu_util"] == "GPU 0 (GPU-the-jobs)", out["labels_gpu_util"]
        assert out["labels_gpu_process_memory"] == f"{pid} sleep", out["labels_gpu_process_memory"]
        assert int(out["points"]["gpu_util"].split("x")[0]) >= 3, out["points"]
        print(f"ok the page draws them: {out['points']['gpu_util']} GPU points, "
              f"{out['points']['gpu_process_memory']} of the program")
    finally:
        bcd.stop()

    # A running job's GPU on /metrics (bcd finds the running jobs when it starts).
    running = submit(30)
    for _ in range(100):
        if c.job_state(running).get("JobState") == "RUNNING" and os.path.exists(pid_file):
            break
        time.sleep(0.1)
    time.sleep(2.5)
    bcd = Bcd(c.store, extra_conf="metrics_jobs=on\nmetrics_token=scraper-0123456789abcdef\n")
    try:
        req = urllib.request.Request(bcd.base + "/metrics",
                                     headers={"Authorization": "Bearer scraper-0123456789abcdef"})
        text = urllib.request.urlopen(req, timeout=10).read().decode()
        values = {line.split("{")[0]: float(line.split(" ")[-1]) for line in text.splitlines()
                  if line.startswith("bc_job_gpu_") and f'job="{running}"' in line and 'gpu="GPU-the-jobs"' in line}
        assert values.get("bc_job_gpu_memory_used_bytes") == 8 * GiB, text
        assert values.get("bc_job_gpu_busy_seconds_total", 0) > 0, text
        assert values.get("bc_job_gpu_energy_joules_total", 0) > 0, text
        assert "# TYPE bc_job_gpu_busy_seconds counter" in text and 'gpu="GPU-not-the-jobs"' not in text, text
        print(f"ok /metrics: the running job's GPU, {values['bc_job_gpu_busy_seconds_total']:.1f} busy s, "
              f"{values['bc_job_gpu_energy_joules_total']:.0f} J, 8 GiB in use")
    finally:
        bcd.stop()
        c.run("scancel", str(running))
        c.wait_job(running)
        c.wait_monitor_gone(running)

    notes_conf = os.path.join(work, "notes.conf")
    with open(notes_conf, "w") as f:
        f.write("gpu_idle_min_s = 2\nmin_elapsed_s = 1\nmemory_low_min_bytes = 1e15\n")
    c.env["BC_NOTES_CONFIG"] = notes_conf

    def notes(job):
        return {n["id"]: n["text"] for n in json.loads(c.bcacct("-j", str(job), "--notes", "--json").stdout)["notes"]}

    assert "gpu_idle" not in notes(job), notes(job)
    script(3)
    idle_job, _ = run_job(4)
    idle = notes(idle_job)
    assert "gpu_idle" in idle and "busy 3.0%" in idle["gpu_idle"], idle
    print(f"ok an idle GPU gets its note: {idle['gpu_idle']}")
finally:
    c.restore_plugstack()
