#!/usr/bin/python3
"""Injected faults on `spearlabel run` (null pipeline: the store and the job are under
test, not the models): LMDB map full from a tiny map, disk full on a small tmpfs (stops
with a clear message, committed rows verify, the resume after remounting bigger equals a
reference run exactly), a read-only output directory, and a filesystem whose locks do not
work (flock failing with ENOLCK, injected with an LD_PRELOAD shim). Mounting needs root:
those cases skip with the reason otherwise.

usage: test_faults.py   (SL_BIN)
"""
import os
import shutil
import subprocess
import tempfile
import unittest

BIN = os.environ["SL_BIN"]
N = 20000


def run(manifest, out, *extra, env=None):
    return subprocess.run([BIN, "run", "--manifest", manifest, "--out", out, "--null-pipeline",
                           "--progress", "1", *extra], capture_output=True, text=True,
                          timeout=300, env=env)


def sl(*args):
    r = subprocess.run([BIN, *args], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return r.stdout


def export(db):
    return sl("export", db) + sl("export", "--errors", db)


def rows(db):
    return int(sl("stat", db).split("rows:")[1].split()[0])


def mount_tmpfs(d, size, ro=False):
    if os.geteuid() != 0:
        return "not root: cannot mount a tmpfs"
    os.makedirs(d, exist_ok=True)
    opts = f"size={size}" + (",ro" if ro else "")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", d], capture_output=True,
                       text=True)
    return None if r.returncode == 0 else f"mount -t tmpfs failed: {r.stderr.strip()}"


class Faults(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="sl_faults_")
        cls.manifest = os.path.join(cls.tmp, "list.txt")
        with open(cls.manifest, "w") as f:
            f.write("".join(f"spk{i % 97:02d}/utt{i:06d}_a_long_enough_name.wav\n"
                            for i in range(N)))
        cls.ref = os.path.join(cls.tmp, "ref")
        r = run(cls.manifest, cls.ref)
        assert r.returncode == 0, r.stderr
        cls.ref_export = export(cls.ref)
        cls.mounts = []

    @classmethod
    def tearDownClass(cls):
        for m in reversed(cls.mounts):
            subprocess.run(["umount", "-l", m], capture_output=True)
        shutil.rmtree(cls.tmp)

    def mount(self, name, size, ro=False):
        d = os.path.join(self.tmp, name)
        why = mount_tmpfs(d, size, ro)
        if why:
            self.skipTest(why)
        self.mounts.append(d)
        return d

    def test_map_full_grows_and_continues(self):
        db = os.path.join(self.tmp, "tiny_map")
        r = run(self.manifest, db, "--map-size-kib", "64")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(export(db), self.ref_export)
        sl("verify", db)

    def test_disk_full_stops_cleanly_then_resume_completes(self):
        d = self.mount("small", "1m")
        db = os.path.join(d, "db")
        r = run(self.manifest, db)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("the filesystem is full", r.stderr)
        sl("verify", db)                      # what was committed is intact
        committed = rows(db)
        self.assertLess(committed, N)
        # free space: the same mount, remounted bigger; the resume completes it exactly
        subprocess.run(["mount", "-o", "remount,size=256m", d], check=True)
        r = run(self.manifest, db)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(export(db), self.ref_export)
        sl("verify", db)

    def test_read_only_output_directory(self):
        d = self.mount("ro", "1m", ro=True)   # root ignores chmod: a read-only mount it is
        r = run(self.manifest, os.path.join(d, "db"))
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("Read-only file system", r.stderr)
        self.assertEqual(os.listdir(d), [])

    def test_filesystem_without_working_locks(self):
        if "libasan" in subprocess.run(["ldd", BIN], capture_output=True, text=True).stdout or \
                subprocess.run(["sh", "-c", f"nm {BIN} 2>/dev/null | grep -q __asan_init"]).returncode == 0:
            self.skipTest("sanitizer build: ASan must be the first preloaded library")
        shim_c = os.path.join(self.tmp, "nolock.c")
        shim = os.path.join(self.tmp, "nolock.so")
        with open(shim_c, "w") as f:
            f.write("#include <errno.h>\nint flock(int fd, int op);\n"
                    "int flock(int fd, int op) { (void)fd; (void)op; errno = ENOLCK; return -1; }\n")
        r = subprocess.run(["cc", "-shared", "-fPIC", "-o", shim, shim_c], capture_output=True,
                           text=True)
        if r.returncode:
            self.skipTest("no C compiler for the LD_PRELOAD shim: " + r.stderr)
        db = os.path.join(self.tmp, "nolock")
        r = run(self.manifest, db, env=dict(os.environ, LD_PRELOAD=shim))
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("No locks available", r.stderr)
        self.assertIn("working locks", r.stderr)
        self.assertFalse(os.path.exists(os.path.join(db, "data.mdb")))


if __name__ == "__main__":
    unittest.main(verbosity=2)
