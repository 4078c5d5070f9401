"""test_install.py -- the install layout (issue 14): `make install
DESTDIR=...` puts ingen and the simulator in bindir, the configuration (every
key), env.example, the alert rules and the dashboard in
sysconfdir/ingenious, the schema files in datadir/ingenious/sql, the flow
header and ingenious.pc, the systemd units in the unit directory, the man
pages ingen(1) and ingenious.conf(5); the staged ingen runs (version, help,
validate of the installed configuration); the units pass `systemd-analyze
verify` and `systemd-analyze security` rates the service (SKIP where
systemd-analyze is missing)."""
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from ingen import Tap, BUILDDIR, SRCDIR, clean_env  # noqa: E402

t = Tap(timeout=300)
stage = tempfile.mkdtemp(prefix="ingen-install-")
t.at_exit(lambda: shutil.rmtree(stage, ignore_errors=True))
r = subprocess.run(["make", "-s", "install", "DESTDIR=" + stage], cwd=BUILDDIR,
                   capture_output=True, text=True, timeout=240)
t.ok(r.returncode == 0, "make install DESTDIR=... succeeds", r.stderr[-1500:])


def makevar(name):
    out = subprocess.run(["make", "-s", "--no-print-directory", "-f", "Makefile", "-f", "-",
                          "print-var"], cwd=BUILDDIR, input="print-var:\n\t@echo $(%s)\n" % name,
                         capture_output=True, text=True, timeout=30).stdout.strip()
    return out


dirs = {k: makevar(k) for k in ("bindir", "sysconfdir", "pkgdatadir", "includedir", "libdir",
                                "systemdsystemunitdir", "mandir")}
want = [
    (dirs["bindir"], "ingen"), (dirs["bindir"], "ingen-azure-sim"),
    (dirs["sysconfdir"], "ingenious/ingenious.conf"), (dirs["sysconfdir"], "ingenious/env.example"),
    (dirs["sysconfdir"], "ingenious/prometheus-alerts.yml"),
    (dirs["sysconfdir"], "ingenious/grafana-dashboard.json"),
    (dirs["pkgdatadir"], "sql/001_schema.sql"), (dirs["pkgdatadir"], "sql/009_usage_rollup.sql"),
    (dirs["includedir"], "ingenious/flow.h"), (dirs["libdir"], "pkgconfig/ingenious.pc"),
    (dirs["systemdsystemunitdir"], "ingenious.service"),
    (dirs["systemdsystemunitdir"], "ingenious.socket"),
    (dirs["mandir"], "man1/ingen.1"), (dirs["mandir"], "man5/ingenious.conf.5"),
]
missing = [os.path.join(d, f) for d, f in want if not os.path.isfile(stage + os.path.join(d, f))]
t.eq(missing, [], "every file in its place (%d files)" % len(want))
unit = stage + os.path.join(dirs["systemdsystemunitdir"], "ingenious.service")
text = open(unit).read() if os.path.exists(unit) else ""
t.ok("ExecStart=%s/ingen serve --config %s/ingenious/ingenious.conf" % (dirs["bindir"],
                                                                       dirs["sysconfdir"]) in text
     and "@bindir@" not in text and "ExecReload=%s/ingen reload" % dirs["bindir"] in text,
     "the unit names the configured paths, reload through ingen reload")

ingen = stage + os.path.join(dirs["bindir"], "ingen")
conf = stage + os.path.join(dirs["sysconfdir"], "ingenious/ingenious.conf")
env = clean_env({"INGENIOUS_CONFIG": conf})
r = subprocess.run([ingen, "version"], capture_output=True, text=True, env=env, timeout=30)
t.ok(r.returncode == 0 and re.match(r"ingen \d+\.\d+", r.stdout), "the staged ingen runs", r.stdout)
r = subprocess.run([ingen, "--help"], capture_output=True, text=True, env=env, timeout=30)
t.ok(r.returncode == 0 and "status" in r.stdout and "Exit codes" in r.stdout,
     "ingen --help names the commands and the exit codes")
r = subprocess.run([ingen, "validate", "--config-only"], capture_output=True, text=True,
                   env=env, cwd=stage, timeout=30)
t.ok(r.returncode == 0 and "configuration is valid" in r.stdout and conf in r.stdout,
     "ingen validate accepts the installed configuration", r.stdout + r.stderr)
man = stage + os.path.join(dirs["mandir"], "man1/ingen.1")
if shutil.which("man"):
    r = subprocess.run(["man", "-l", man], capture_output=True, text=True, timeout=30,
                       env=dict(env, MANWIDTH="80", MANPAGER="cat", PAGER="cat"))
    t.ok(r.returncode == 0 and "EXIT STATUS" in r.stdout, "ingen(1) renders, with its exit codes")

sa = shutil.which("systemd-analyze")
if sa is None:
    print("ok %d # SKIP systemd-analyze is not installed" % (t.n + 1))
    t.n += 1
else:
    # verify wants the executables to exist: point the copy at the staged ones
    work = tempfile.mkdtemp(prefix="ingen-units-")
    t.at_exit(lambda: shutil.rmtree(work, ignore_errors=True))
    for name in ("ingenious.service", "ingenious.socket"):
        src = stage + os.path.join(dirs["systemdsystemunitdir"], name)
        with open(os.path.join(work, name), "w") as f:
            f.write(open(src).read().replace(dirs["bindir"] + "/", stage + dirs["bindir"] + "/"))
    r = subprocess.run([sa, "verify", "--man=no", os.path.join(work, "ingenious.service"),
                        os.path.join(work, "ingenious.socket")], capture_output=True, text=True,
                       cwd=work, timeout=60)
    t.ok(r.returncode == 0, "systemd-analyze verify passes on both units", r.stdout + r.stderr)
    r = subprocess.run([sa, "security", "--offline=true", os.path.join(work, "ingenious.service")],
                       capture_output=True, text=True, cwd=work, timeout=60)
    m = re.search(r"Overall exposure level for ingenious.service: ([0-9.]+) (\w+)", r.stdout)
    t.ok(m is not None and float(m.group(1)) <= 2.0,
         "systemd-analyze security rates the service %s" % (m.group(0) if m else "?"),
         r.stdout[-600:] + r.stderr[-300:])
t.done()
