"""test_deb.py -- the Debian package (issue 14): debian/ builds a .deb with
`dpkg-buildpackage -us -uc -b` from a copy of the source tree; lintian
reports no error; `dpkg -i` installs it (the programs, the units installed
and not enabled, /etc/ingenious/ingenious.conf as a conffile, the schema
files, the flow header and ingenious.pc, the man pages, the `ingenious`
system user); the installed `ingen version` and `ingen validate` run from
the installed paths; `dpkg --purge` removes it all, the user included.
Needs root (CI runs as root) and dpkg-buildpackage with debhelper: SKIP
otherwise."""
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from ingen import Tap, SRCDIR, clean_env  # noqa: E402

t = Tap(timeout=900)


def skip(why):
    print("1..0 # SKIP %s" % why)
    sys.exit(0)


if os.geteuid() != 0:
    skip("installing a package needs root")
if not shutil.which("dpkg-buildpackage") or not os.path.exists("/usr/bin/dh"):
    skip("dpkg-buildpackage or debhelper is not installed")
if not os.path.isdir(os.path.join(SRCDIR, "debian")):
    skip("no debian/ in the source tree (a tarball build)")
if subprocess.run(["dpkg-query", "-W", "-f=${Status}", "ingenious"], capture_output=True,
                  text=True).stdout.startswith("install ok"):
    skip("a package named ingenious is installed already: not touching it")

work = tempfile.mkdtemp(prefix="ingen-deb-")
t.at_exit(lambda: shutil.rmtree(work, ignore_errors=True))
tree = os.path.join(work, "ingenious-0.1.0")
# a copy of the sources only: no build directories, no state, no git
shutil.copytree(SRCDIR, tree, symlinks=True, ignore=shutil.ignore_patterns(
    "_build*", ".git", ".ingenious", ".local", "autom4te.cache", "*.o", "*.a", "*.deb"))
r = subprocess.run(["dpkg-buildpackage", "-us", "-uc", "-b", "-j2"], cwd=tree,
                   capture_output=True, text=True, timeout=800, env=clean_env())
debs = sorted(f for f in os.listdir(work) if f.startswith("ingenious_") and f.endswith(".deb"))
t.ok(r.returncode == 0 and debs, "dpkg-buildpackage -us -uc -b builds %s" % debs,
     (r.stdout + r.stderr)[-2500:])
if not debs:
    t.done()
deb = os.path.join(work, debs[0])
if shutil.which("lintian"):
    r = subprocess.run(["lintian", "--allow-root", deb], capture_output=True, text=True,
                       timeout=300)
    errors = [l for l in r.stdout.splitlines() if l.startswith("E:")]
    t.eq(errors, [], "lintian reports no error (%d warnings)"
         % sum(l.startswith("W:") for l in r.stdout.splitlines()))
listing = subprocess.run(["dpkg", "-c", deb], capture_output=True, text=True).stdout
for f in ("./usr/bin/ingen", "./usr/bin/ingen-azure-sim", "./etc/ingenious/ingenious.conf",
          "./lib/systemd/system/ingenious.service", "./lib/systemd/system/ingenious.socket",
          "./usr/share/ingenious/sql/001_schema.sql", "./usr/include/ingenious/flow.h",
          "./usr/share/man/man1/ingen.1.gz", "./usr/share/man/man5/ingenious.conf.5.gz"):
    t.ok(f in listing, "the package holds %s" % f)
ctrl = os.path.join(work, "control")
subprocess.run(["dpkg-deb", "-e", deb, ctrl], check=True)
conffiles = open(os.path.join(ctrl, "conffiles")).read() if os.path.exists(
    os.path.join(ctrl, "conffiles")) else ""
t.ok("/etc/ingenious/ingenious.conf" in conffiles, "ingenious.conf is a conffile", conffiles)


def purge():
    subprocess.run(["dpkg", "--purge", "ingenious"], capture_output=True, timeout=120)


t.at_exit(purge)
r = subprocess.run(["dpkg", "-i", deb], capture_output=True, text=True, timeout=300,
                   env=dict(clean_env(), DEBIAN_FRONTEND="noninteractive"))
t.ok(r.returncode == 0, "dpkg -i installs it", (r.stdout + r.stderr)[-1500:])
r = subprocess.run(["/usr/bin/ingen", "version"], capture_output=True, text=True, timeout=30)
t.ok(r.returncode == 0 and r.stdout.startswith("ingen "), "the installed ingen version", r.stdout)
r = subprocess.run(["/usr/bin/ingen", "validate", "--config-only"], capture_output=True,
                   text=True, cwd=work, timeout=30,
                   env=clean_env({"INGENIOUS_CONFIG": "/etc/ingenious/ingenious.conf"}))
t.ok(r.returncode == 0 and "/etc/ingenious/ingenious.conf" in r.stdout,
     "the installed ingen validates the installed configuration", r.stdout + r.stderr)
t.ok(subprocess.run(["getent", "passwd", "ingenious"], capture_output=True).returncode == 0,
     "postinst made the ingenious system user")
st = os.stat("/var/lib/ingenious") if os.path.isdir("/var/lib/ingenious") else None
t.ok(st is not None and (st.st_mode & 0o777) == 0o700, "and its state directory, 0700")
enabled = subprocess.run(["systemctl", "is-enabled", "ingenious.service"], capture_output=True,
                         text=True).stdout.strip() if shutil.which("systemctl") else "disabled"
t.ok(enabled in ("disabled", ""), "the service is installed, not enabled (%s)" % enabled)
r = subprocess.run(["dpkg", "--purge", "ingenious"], capture_output=True, text=True, timeout=120)
t.ok(r.returncode == 0 and not os.path.exists("/usr/bin/ingen")
     and not os.path.exists("/etc/ingenious/ingenious.conf")
     and not os.path.exists("/var/lib/ingenious"), "dpkg --purge removes it all",
     r.stdout + r.stderr)
t.ok(subprocess.run(["getent", "passwd", "ingenious"], capture_output=True).returncode != 0,
     "the user too")
t.done()
