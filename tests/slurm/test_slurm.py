#!/usr/bin/python3
"""jobs/ on a real Slurm cluster: a one-node cluster (Debian's slurmctld, slurmd and
munged, all as root, no systemd) is started in a temporary directory, then
- sbatch --ntasks=2 jobs/spearlabel.sbatch on the example runs 3 ranks (2 workers, rank 0
  the extra one), completes, and the dataset equals the one `mpirun -n 3 spearlabel run`
  makes directly;
- preemption: `scancel --signal=USR1 --batch` mid-run -> the run exits 3, the script
  requeues the job, the second start (SLURM_RESTART_COUNT=1) resumes, same dataset;
- hard `scancel` mid-run, then a new job through jobs/submit.sh -> same dataset.
Each job's state changes (`scontrol show job`) and the controller's job-completion log
are printed (`ctest -L slurm -V` shows them; there is no slurmdbd, so no sacct).

usage: test_slurm.py    (SL_BIN = the spearlabel binary; needs root and tools/install-deps.sh)
Exit 77 (skipped) when not root or Slurm/munge are not installed.
"""
import ctypes
import fcntl
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

SRC = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
sys.path.insert(0, os.path.join(SRC, "examples"))
from corpus import make_corpus  # noqa: E402

BIN = os.environ["SL_BIN"]
SBATCH = os.path.join(SRC, "jobs", "spearlabel.sbatch")
SUBMIT = os.path.join(SRC, "jobs", "submit.sh")
M = os.path.join(SRC, "examples", "models")
MODELS = ["--hubert", os.path.join(M, "hubert_tiny"), "--layer", "2",
          "--kmeans", os.path.join(M, "kmeans_16.npy"),
          "--s2t", os.path.join(M, "s2t_tiny.safetensors")]
RUN_FLAGS = ["--max-len", "24", "--progress", "1"]
DELAY_MS = "400"   # SL_TEST_DELAY_MS for the interrupted jobs: 20 utterances take >= 4 s
DEADLINE = 240     # s for the whole test; ctest's TIMEOUT is 300
NODE = socket.gethostname().split(".")[0]


def log(*a):
    print(*a, flush=True)


def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def die_with_parent():
    """preexec_fn: the daemon gets SIGTERM if this test dies, even by SIGKILL."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def sh(*args, check=True, env=None, timeout=60):
    r = subprocess.run(list(args), capture_output=True, text=True, env=env, timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(args)}: exit {r.returncode}\n{r.stdout}{r.stderr}")
    return r


class Cluster:
    """slurmctld + slurmd + munged as children of this process, state in `root`."""

    def __init__(self, root):
        self.root = root
        self.procs = []  # (name, Popen), in start order

    def path(self, *p):
        return os.path.join(self.root, *p)

    def conf(self):
        ctld_port, slurmd_port = free_ports(2)
        p = self.path
        return f"""# one-node test cluster written by tests/slurm/test_slurm.py
ClusterName=sltest
SlurmctldHost={NODE}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={p('munge', 'socket')}
CredType=cred/munge
StateSaveLocation={p('state')}
SlurmdSpoolDir={p('spool')}
SlurmctldPidFile={p('slurmctld.pid')}
SlurmdPidFile={p('slurmd.pid')}
SlurmctldLogFile={p('log', 'slurmctld.log')}
SlurmdLogFile={p('log', 'slurmd.log')}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerParameters=batch_sched_delay=0
# 4 CPUs whatever the machine has: 3 ranks fit on a 2-core runner
SlurmdParameters=config_overrides
ReturnToService=2
KillWait=5
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc={p('log', 'jobcomp.txt')}
NodeName={NODE} NodeAddr=127.0.0.1 CPUs=4 RealMemory=1000 State=UNKNOWN
PartitionName=test Nodes={NODE} Default=YES MaxTime=INFINITE State=UP
"""

    def spawn(self, name, args):
        out = open(self.path("log", name + ".out"), "w")
        # Own session: a signal to our process group (ctest, timeout) leaves the daemons
        # to stop() and its ordering; PR_SET_PDEATHSIG still ends them if we die.
        p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                             preexec_fn=die_with_parent, start_new_session=True)
        out.close()
        self.procs.append((name, p))
        return p

    def wait_for(self, what, ok, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            for name, p in self.procs:
                if p.poll() is not None:
                    raise AssertionError(f"{name} exited {p.returncode}:\n" + self.logs())
            if ok():
                return
            time.sleep(0.05)
        raise AssertionError(f"cluster: {what} not within {timeout} s\n" + self.logs())

    def start(self):
        t0 = time.time()
        for d in ("munge", "state", "spool", "log"):
            os.makedirs(self.path(d))
        os.chmod(self.path("munge"), 0o755)   # munged refuses a socket others cannot reach
        sh("mungekey", "-c", "-k", self.path("munge", "key"))
        with open(self.path("slurm.conf"), "w") as f:
            f.write(self.conf())
        os.environ["SLURM_CONF"] = self.path("slurm.conf")
        mp = self.path("munge")
        self.spawn("munged", ["munged", "-F", "-S", f"{mp}/socket", f"--key-file={mp}/key",
                              f"--pid-file={mp}/pid", f"--seed-file={mp}/seed"])
        self.wait_for("munged socket", lambda: os.path.exists(f"{mp}/socket"))
        self.spawn("slurmctld", ["slurmctld", "-D"])
        self.wait_for("scontrol ping", lambda: sh("scontrol", "ping", check=False).returncode == 0)
        self.spawn("slurmd", ["slurmd", "-D", "-N", NODE])
        self.wait_for("node idle", lambda: sh("sinfo", "-h", "-o", "%t", check=False).stdout.strip() == "idle")
        log(f"cluster up in {time.time() - t0:.2f} s: node {NODE}, 4 CPUs, partition test")

    def stop(self, tmp):
        """Cancels what is left, lets the job processes end, then stops the daemons by PID
        (reverse order) and kills by PID whatever still has a file open below tmp."""
        alive = {name: p.poll() is None for name, p in self.procs}
        if alive.get("slurmctld") and alive.get("slurmd"):
            left = sh("squeue", "-h", "-o", "%i", check=False).stdout.split()
            if left:
                sh("scancel", *left, check=False)
            deadline = time.time() + 20
            while (sh("squeue", "-h", "-o", "%i", check=False).stdout.strip()
                   or self.job_procs(tmp)):  # slurmstepd reports to slurmd at the end
                if time.time() > deadline:
                    log(f"cleanup: jobs or processes left after 20 s: {describe(self.job_procs(tmp))}")
                    break
                time.sleep(0.2)
        for name, p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        self.procs = []
        for pid in users_of(tmp):
            log(f"cleanup: killing leftover {describe([pid])}")
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def job_procs(self, tmp):
        """What runs below tmp besides the daemons and their helpers (slurmscriptd)."""
        daemons = {p.pid for _, p in self.procs}
        return {pid for pid in users_of(tmp) if pid not in daemons and parent(pid) not in daemons}

    def logs(self):
        out = []
        for name in ("munged.out", "slurmctld.log", "slurmd.log"):
            f = self.path("log", name)
            if os.path.exists(f):
                with open(f, errors="replace") as fh:
                    out.append(f"--- {name} (tail)\n" + "".join(fh.readlines()[-15:]))
        return "\n".join(out)


def users_of(root):
    """PIDs (not this one) with their cwd or an open file below root: the jobs'
    slurmstepd, mpirun and ranks, the daemons."""
    pids = set()
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == os.getpid():
            continue
        try:
            links = [os.readlink(f"/proc/{d}/cwd")]
            links += [os.readlink(f"/proc/{d}/fd/{fd}") for fd in os.listdir(f"/proc/{d}/fd")]
        except OSError:  # gone, or not ours to read
            continue
        if any(x == root or x.startswith(root + "/") for x in links):
            pids.add(int(d))
    return pids


def parent(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def describe(pids):
    out = []
    for pid in sorted(pids):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")[:80].strip()
            out.append(f"{pid} ({cmd})")
        except OSError:
            out.append(str(pid))
    return ", ".join(out)


def job_info(jid):
    out = sh("scontrol", "-o", "show", "job", str(jid)).stdout
    return dict(re.findall(r"(\w+)=(\S*)", out))


def state_line(jid, info):
    return (f"JobId={jid} JobState={info.get('JobState')} Reason={info.get('Reason')} "
            f"Restarts={info.get('Restarts')} ExitCode={info.get('ExitCode')}")


def watch(jid, until, timeout=60):
    """Polls `scontrol show job`, prints every change of state, returns the info
    for which until(info) holds."""
    t0 = time.time()
    last = None
    while True:
        info = job_info(jid)
        line = state_line(jid, info)
        if line != last:
            log(f"  +{time.time() - t0:5.1f}s  {line}")
            last = line
        if until(info):
            return info
        if time.time() - t0 > timeout:
            raise AssertionError(f"job {jid}: still {line} after {timeout} s")
        time.sleep(0.1)


def sbatch(*args, env=None):
    r = sh("sbatch", *args, env=env)
    return int(r.stdout.split()[-1])


def export(db):
    return (sh(BIN, "export", db).stdout, sh(BIN, "export", "--errors", db).stdout)


def read(path):
    with open(path) as f:
        return f.read()


def wait_for_text(path, text, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if os.path.exists(path) and text in read(path):
            return
        time.sleep(0.05)
    raise AssertionError(f"{path}: no {text!r} within {timeout} s")


def wait_unlocked(db, timeout=30):
    """Until no process holds the dataset's writer lock (flock on DB/spearlabel.lock)."""
    deadline = time.time() + timeout
    with open(os.path.join(db, "spearlabel.lock")) as f:
        while True:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                fcntl.flock(f, fcntl.LOCK_UN)
                return
            except BlockingIOError:
                if time.time() > deadline:
                    raise AssertionError(f"a process still holds {db}/spearlabel.lock")
                time.sleep(0.1)


def units_to_do(log_text):
    return [int(n) for n in re.findall(r"(\d+) units to do", log_text)]


class SlurmTest(unittest.TestCase):
    tmp = None  # set by main()

    @classmethod
    def setUpClass(cls):
        cls.manifest, cls.ids, _ = make_corpus(os.path.join(cls.tmp, "corpus"))
        env = dict(os.environ)
        env.pop("SL_TEST_DELAY_MS", None)
        cls.ref = {}
        for unit in ("4", "1"):  # the default --unit (the example), and 1 for the signals
            db = os.path.join(cls.tmp, "ref-unit" + unit)
            r = sh("mpirun", "-n", "3", "--oversubscribe", "--bind-to", "none", BIN, "run",
                   "--manifest", cls.manifest, "--out", db, *MODELS, *RUN_FLAGS, "--unit", unit,
                   env=env, timeout=120)
            cls.ref[unit] = export(db)
        log(f"references: mpirun -n 3 spearlabel run on {len(cls.ids)} ids, "
            f"{cls.ref['4'][0].count(chr(10))} rows + {cls.ref['4'][1].count(chr(10))} errors")

    def dir(self, name):
        d = os.path.join(self.tmp, name)
        os.makedirs(d)
        return d

    def job_args(self, d, *extra):
        return ["--ntasks=2", "--cpus-per-task=1", "--time=10", f"--output={d}/slurm-%j.out",
                SBATCH, "--manifest", self.manifest, "--out", f"{d}/db", *MODELS, *RUN_FLAGS,
                *extra]

    def env(self, delay_ms=None):
        e = dict(os.environ, SPEARLABEL=BIN)
        e.pop("SL_TEST_DELAY_MS", None)
        if delay_ms:
            e["SL_TEST_DELAY_MS"] = delay_ms
        return e

    def test_1_run(self):
        d = self.dir("run")
        log("\n== sbatch --ntasks=2 --cpus-per-task=1 jobs/spearlabel.sbatch <example>")
        jid = sbatch(*self.job_args(d), env=self.env())
        info = watch(jid, lambda i: i["JobState"] not in ("PENDING", "RUNNING", "COMPLETING"))
        out = read(f"{d}/slurm-{jid}.out")
        self.assertEqual((info["JobState"], info["ExitCode"], info["Restarts"]),
                         ("COMPLETED", "0:0", "0"), out)
        self.assertIn("spearlabel run exited 0", out)
        # 2 task slots: 2 workers plus rank 0 as the extra, unbound rank.
        self.assertRegex(out, r"units to do on 3 rank\(s\)")
        # The audio hours per core-hour count the 2 cores allocated, not 3 ranks x 1 thread.
        self.assertRegex(out, r"on 2 core\(s\) \(the allocation's; 3 rank\(s\) x 1 thread\(s\)\)")
        log("  --ntasks=2 ran 3 ranks (rank 0 + 2 workers), 1 thread each, on the 2 cores allocated")
        self.assertEqual(export(f"{d}/db"), self.ref["4"], "dataset differs from mpirun's")
        log("  dataset == mpirun's (export rows and errors)")

    def test_2_preempt_requeue(self):
        d = self.dir("preempt")
        log(f"\n== preemption: sbatch (SL_TEST_DELAY_MS={DELAY_MS}, --unit 1), "
            "then scancel --signal=USR1 --batch mid-run")
        jid = sbatch(*self.job_args(d, "--unit", "1"), env=self.env(DELAY_MS))
        jlog = f"{d}/slurm-{jid}.out"
        watch(jid, lambda i: i["JobState"] == "RUNNING")
        wait_for_text(jlog, "units to do")
        time.sleep(1.0)
        sh("scancel", "--signal=USR1", "--batch", str(jid))
        log(f"  scancel --signal=USR1 --batch {jid}")
        info = watch(jid, lambda i: i["Restarts"] == "1" and i["JobState"] == "PENDING")
        stat = sh(BIN, "stat", f"{d}/db").stdout
        self.assertIn('"status":"interrupted"', stat)
        self.assertIn("spearlabel run exited 3", read(jlog))
        # Let the first allocation finish its clean-up on the node first: a requeued job
        # started while the old one's credential is still revoked is killed by slurmctld
        # ("Killing non-startable batch JobId=2: Job credential revoked", seen under load).
        deadline = time.time() + 30
        while time.time() < deadline and sh("sinfo", "-h", "-o", "%t").stdout.strip() != "idle":
            time.sleep(0.2)
        time.sleep(1.0)
        sh("scontrol", "update", f"JobId={jid}", "StartTime=now")  # skip the ~2 min BeginTime
        log(f"  scontrol update JobId={jid} StartTime=now")
        info = watch(jid, lambda i: i["JobState"] not in ("PENDING", "RUNNING", "COMPLETING"))
        out = read(jlog)
        self.assertEqual((info["JobState"], info["ExitCode"], info["Restarts"]),
                         ("COMPLETED", "0:0", "1"), out)
        self.assertIn("SLURM_RESTART_COUNT=0", out)
        self.assertIn("SLURM_RESTART_COUNT=1", out)
        todo = units_to_do(out)
        self.assertEqual(len(todo), 2, out)
        self.assertLess(todo[1], todo[0], "the second start did not resume")
        log(f"  start 1: {todo[0]} units to do, exit 3, requeued; "
            f"start 2 (SLURM_RESTART_COUNT=1): {todo[1]} units to do, exit 0")
        self.assertEqual(export(f"{d}/db"), self.ref["1"], "dataset differs from mpirun's")
        log("  dataset == uninterrupted mpirun's")

    def test_3_cancel_resubmit(self):
        d = self.dir("cancel")
        log(f"\n== hard stop: sbatch (SL_TEST_DELAY_MS={DELAY_MS}, --unit 1), scancel mid-run, "
            "then jobs/submit.sh")
        jid = sbatch(*self.job_args(d, "--unit", "1"), env=self.env(DELAY_MS))
        watch(jid, lambda i: i["JobState"] == "RUNNING")
        wait_for_text(f"{d}/slurm-{jid}.out", "units to do")
        time.sleep(1.0)
        sh("scancel", str(jid))
        log(f"  scancel {jid}")
        info = watch(jid, lambda i: i["JobState"] not in ("PENDING", "RUNNING", "COMPLETING"))
        self.assertEqual(info["JobState"], "CANCELLED")
        wait_unlocked(f"{d}/db")
        self.assertEqual(sh(BIN, "verify", f"{d}/db").returncode, 0)
        cmd = [SUBMIT, "-n", "2", "-c", "1", "-t", "10", "-o", f"{d}/resubmit-%j.out",
               "--bin", BIN, "--manifest", self.manifest, "--out", f"{d}/db", *MODELS,
               "--", *RUN_FLAGS, "--unit", "1"]
        dry = sh(cmd[0], "--dry-run", *cmd[1:]).stdout
        self.assertIn("#SBATCH --ntasks=2", dry)
        self.assertIn("scontrol requeue", dry)
        log("  jobs/submit.sh -n 2 -c 1 -t 10 --manifest ... --out <same db> -- --unit 1 ...")
        jid2 = int(sh(*cmd, env=self.env()).stdout.split()[-1])
        info = watch(jid2, lambda i: i["JobState"] not in ("PENDING", "RUNNING", "COMPLETING"))
        out = read(f"{d}/resubmit-{jid2}.out")
        self.assertEqual((info["JobState"], info["ExitCode"]), ("COMPLETED", "0:0"), out)
        first = units_to_do(read(f"{d}/slurm-{jid}.out"))[0]
        second = units_to_do(out)[0]
        self.assertLess(second, first, "the resubmitted job did not resume")
        log(f"  job {jid}: {first} units to do, cancelled; job {jid2}: {second} units to do, exit 0")
        self.assertEqual(export(f"{d}/db"), self.ref["1"], "dataset differs from mpirun's")
        log("  dataset == uninterrupted mpirun's")


class Interrupted(KeyboardInterrupt):
    pass


def main():
    if os.geteuid() != 0 or not all(shutil.which(x) for x in ("slurmctld", "slurmd", "munged", "sbatch")):
        print("skipped: needs root and slurmctld, slurmd, slurm-client, munge (tools/install-deps.sh)")
        return 77
    # A job of an outer Slurm allocation must not leak into ours.
    for k in [k for k in os.environ if k.startswith("SLURM_")]:
        del os.environ[k]
    os.environ.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")

    # The trap: any of these, or our own deadline, unwinds to the `finally` that stops the
    # daemons by PID. If this process is SIGKILLed (ctest's timeout), the daemons get
    # SIGTERM (PR_SET_PDEATHSIG) and the watchdog kills what is left below tmp.
    def trap(signum, _frame):
        raise Interrupted(f"signal {signum}")
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGALRM):
        signal.signal(s, trap)
    signal.alarm(DEADLINE)

    t0 = time.time()
    tmp = tempfile.mkdtemp(prefix="sl_slurm_")
    os.chmod(tmp, 0o755)  # munged wants every directory above its socket searchable
    watchdog = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--watchdog", tmp],
                                stdin=subprocess.PIPE, cwd="/", start_new_session=True)
    cluster = Cluster(os.path.join(tmp, "cluster"))
    ok = False
    try:
        cluster.start()
        SlurmTest.tmp = tmp
        suite = unittest.defaultTestLoader.loadTestsFromTestCase(SlurmTest)
        result = unittest.TextTestRunner(verbosity=2, stream=sys.stdout).run(suite)
        ok = result.wasSuccessful()
        log("\n== the controller's job-completion log (jobcomp/filetxt; one line per job end,"
            " a requeue shows as PENDING)")
        jc = cluster.path("log", "jobcomp.txt")
        for line in (read(jc).splitlines() if os.path.exists(jc) else []):
            f = dict(re.findall(r"(\w+)=(\S*)", line))
            log("  " + " ".join(f"{k}={f.get(k)}" for k in
                                ("JobId", "Name", "JobState", "StartTime", "EndTime", "ExitCode")))
    except Interrupted as e:
        log(f"interrupted ({e}) after {time.time() - t0:.0f} s")
    finally:
        signal.alarm(0)
        for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(s, signal.SIG_IGN)   # let the cleanup finish
        if not ok:
            log(cluster.logs())
        cluster.stop(tmp)
        shutil.rmtree(tmp, ignore_errors=True)
        watchdog.stdin.close()
        watchdog.wait()
    log(f"slurm test: {'ok' if ok else 'FAILED'} in {time.time() - t0:.1f} s")
    return 0 if ok else 1


def watchdog(tmp):
    """Runs beside the test in its own session; when the test ends, however it ends
    (EOF on stdin), kills by PID whatever still runs below tmp and removes tmp."""
    sys.stdin.buffer.read()
    for _ in range(3):
        pids = users_of(tmp)
        if not pids:
            break
        log(f"watchdog: killing {describe(pids)}")
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.5)
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--watchdog"]:
        sys.exit(watchdog(sys.argv[2]))
    sys.exit(main())
