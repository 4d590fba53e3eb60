#!/usr/bin/python3
"""A stand-in for systemctl inside the rehearsal's chroot (deploy/rehearse.sh), where systemd does
not run. It starts what the guide enables the way systemd would: the wxbot units from their unit
files (User=, WorkingDirectory=, EnvironmentFile= read with systemd's rules, RuntimeDirectory=,
ExecStart=, SIGTERM on stop), the system's daemons by their own commands. Each unit's output goes
to /var/log/rehearsal/<unit>.log, as it would go to the journal.

Only what the guide uses: daemon-reload, enable [--now], start, stop, restart, reload, status."""
import fnmatch
import os
import pwd
import shlex
import signal
import subprocess
import sys
import time

PIDS = "/run/rehearsal"
LOGS = "/var/log/rehearsal"
UNITS = "/etc/systemd/system"
DAEMONS = {  # the system's services, started as their packages would under systemd
    "cron": (["/usr/sbin/cron"], None),
    "postgresql": (["pg_ctlcluster", "15", "main", "start"], ["pg_ctlcluster", "15", "main", "stop"]),
    "redis-server": (["redis-server", "/etc/redis/redis.conf", "--daemonize", "yes"], ["redis-cli", "shutdown"]),
    "nginx": (["nginx"], ["nginx", "-s", "stop"]),
    "chrony": (None, None),  # a chroot cannot set the clock: the host's is used
}


def unit_file(name: str) -> str:
    base, at, instance = name.partition("@")
    path = os.path.join(UNITS, f"{base}@.service" if at else f"{name}.service")
    with open(path, encoding="utf-8") as f:
        return f.read().replace("%i", instance)


def service_settings(text: str) -> dict[str, str]:
    section, settings = "", {}
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("["):
            section = line
        elif section == "[Service]" and "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            settings[key.strip()] = value.strip()
    return settings


def environment(settings: dict[str, str], user: pwd.struct_passwd) -> dict[str, str]:
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": user.pw_dir,
           "USER": user.pw_name, "LOGNAME": user.pw_name, "SHELL": user.pw_shell, "LANG": "C.UTF-8"}
    if "EnvironmentFile" in settings:
        # wxbot's own reader of systemd's rules, loaded alone (the package needs the virtualenv); the
        # rehearsal's copy, as systemd's own reader does not change when the release is rolled back
        import importlib.util
        spec = importlib.util.spec_from_file_location("envfile", "/usr/local/lib/wxbot-envfile.py")
        envfile = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(envfile)
        with open(settings["EnvironmentFile"].lstrip("-"), encoding="utf-8") as f:
            env.update(envfile.parse(f.read()))
    return env


def start_unit(name: str) -> None:
    if running(name):
        return
    settings = service_settings(unit_file(name))
    user = pwd.getpwnam(settings.get("User", "root"))
    for directory in settings.get("RuntimeDirectory", "").split():
        path = os.path.join("/run", directory)
        os.makedirs(path, mode=0o755, exist_ok=True)
        for part in (path, os.path.dirname(path)):
            if part != "/run":
                os.chown(part, user.pw_uid, user.pw_gid)
    os.makedirs(LOGS, exist_ok=True)
    # The child keeps its own copy of the log descriptor; ours closes when the block ends. Its input
    # is /dev/null, as systemd gives it (not the pipe a `yes | …` step feeds).
    with open(os.path.join(LOGS, f"{name}.log"), "ab") as log:
        process = subprocess.Popen(shlex.split(settings["ExecStart"]), cwd=settings.get("WorkingDirectory", "/"),
                                   env=environment(settings, user), stdin=subprocess.DEVNULL, stdout=log,
                                   stderr=subprocess.STDOUT,
                                   user=user.pw_uid, group=user.pw_gid, extra_groups=[], start_new_session=True)
    with open(os.path.join(PIDS, name), "w") as f:
        f.write(str(process.pid))


def running(name: str) -> int:
    try:
        with open(os.path.join(PIDS, name)) as f:
            pid = int(f.read())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return 0


def stop_unit(name: str) -> None:
    pid = running(name)
    if not pid:
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 20  # TimeoutStopSec=20
    while time.monotonic() < deadline and running(name):
        time.sleep(0.1)
    if running(name):
        os.kill(pid, signal.SIGKILL)
    os.remove(os.path.join(PIDS, name))


def nginx_running() -> bool:
    """nginx -t leaves an empty pid file behind: only a pid of a living process counts."""
    try:
        with open("/run/nginx.pid") as f:
            os.kill(int(f.read()), 0)
        return True
    except (OSError, ValueError):
        return False


def expand(patterns: list[str]) -> list[str]:
    """Unit names, with globs ('wxbot-worker@*') matched against the running units."""
    names = []
    for pattern in patterns:
        pattern = pattern.removesuffix(".service")
        if any(c in pattern for c in "*?["):
            names += [n for n in sorted(os.listdir(PIDS)) if fnmatch.fnmatch(n, pattern)]
        else:
            names.append(pattern)
    return names


def act(verb: str, name: str) -> None:
    if name in DAEMONS:
        begin, end = DAEMONS[name]
        if verb in ("stop", "restart") and end:
            subprocess.run(end, check=False)
        if verb in ("start", "restart") and begin:
            subprocess.run(begin, check=True)
        if verb == "reload" and name == "nginx":
            subprocess.run(["nginx", "-s", "reload"] if nginx_running() else ["nginx"], check=True)
        return
    if verb in ("stop", "restart"):
        stop_unit(name)
    if verb in ("start", "restart"):
        start_unit(name)


def main(args: list[str]) -> None:
    os.makedirs(PIDS, exist_ok=True)
    args = [a for a in args if a not in ("--no-pager", "-q")]
    verb, rest = args[0], args[1:]
    if verb == "daemon-reload":
        return
    if verb == "enable":
        if "--now" in rest:
            for name in expand([r for r in rest if r != "--now"]):
                act("start", name)
        return
    if verb == "status":
        for name in expand(rest or ["*"]):
            pid = running(name)
            print(f"{name}: {f'active (pid {pid})' if pid else 'inactive'}")
        return
    for name in expand(rest):
        act(verb, name)


if __name__ == "__main__":
    main(sys.argv[1:])
