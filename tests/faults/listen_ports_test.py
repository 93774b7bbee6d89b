"""Each server listens on exactly the addresses it prints (issue 29): replay_server and
learner_main started with --port=0, with and without --metrics_port=0 (and with /metrics on
an address of its own, --metrics_host=127.0.0.2), have listening TCP sockets on the printed
gRPC host:port (and the printed metrics host:port) and on no other. gRPC
1.51 with SO_REUSEPORT (its default) opened one more listener per extra poller, each bound
to port 0 again, so a second, unprinted port served the same services. Run by
tests/faults/fault_test.sh as `listen_ports_test.py BIN_DIR [replay|learner]...`.

The listening sockets of a process: the socket inodes among /proc/PID/fd, looked up in
/proc/net/tcp and /proc/net/tcp6 (state 0A, LISTEN).
"""
import os
import re
import select
import subprocess
import sys
import time

failures = []


def listening_ports(pid):
    inodes = set()
    fd_dir = f"/proc/{pid}/fd"
    for fd in os.listdir(fd_dir):
        try:
            target = os.readlink(os.path.join(fd_dir, fd))
        except OSError:
            continue  # closed meanwhile
        m = re.fullmatch(r"socket:\[(\d+)\]", target)
        if m:
            inodes.add(m.group(1))
    ports = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not os.path.exists(table):
            continue
        with open(table) as f:
            next(f)  # header
            for line in f:
                fields = line.split()
                local, state, inode = fields[1], fields[3], fields[9]
                if state == "0A" and inode in inodes:
                    address, port = local.rsplit(":", 1)
                    if address.startswith("0000000000000000FFFF0000"):
                        address = address[-8:]  # an IPv4-mapped IPv6 address
                    if len(address) == 8:  # IPv4, little-endian hex
                        address = ".".join(str(int(address[i:i + 2], 16))
                                           for i in (6, 4, 2, 0))
                    ports.append(f"{address}:{int(port, 16)}")
    return sorted(ports)


def start(argv, want):
    """Starts argv and reads its stdout and stderr until each prefix in `want` began a line
    ending in HOST:PORT (15 s at most); returns (process, {prefix: "HOST:PORT"})."""
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         env={**os.environ, "OPENBLAS_NUM_THREADS": "1"})
    ports = {}
    buffer = b""
    deadline = time.monotonic() + 15
    while len(ports) < len(want) and time.monotonic() < deadline:
        ready, _, _ = select.select([p.stdout], [], [], max(0, deadline - time.monotonic()))
        if not ready:
            break
        chunk = os.read(p.stdout.fileno(), 4096)
        if not chunk:
            break  # exited
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            text = line.decode(errors="replace").strip()
            for prefix in want:
                if text.startswith(prefix):
                    ports[prefix] = text.rsplit(" ", 1)[1]
    return p, ports


def check(name, argv, want):
    p, printed = start(argv, want)
    try:
        if len(printed) < len(want):
            failures.append(f"{name}: printed {printed}, expected lines {want}")
            print(f"FAIL {name}: printed {printed}", flush=True)
            return
        # Listeners are all open before the listening line; a moment for any late one.
        time.sleep(0.5)
        actual = listening_ports(p.pid)
        expected = sorted(printed.values())
        ok = actual == expected
        print(f"{'ok  ' if ok else 'FAIL'} {name}: {' '.join(argv[1:])}: printed "
              f"{expected}, listens on {actual}", flush=True)
        if not ok:
            failures.append(f"{name}: listens on {actual}, printed only {expected}")
    finally:
        p.kill()
        p.wait()


def main():
    bin_dir = sys.argv[1]
    which = sys.argv[2:] or ["replay", "learner"]
    shard = os.path.join(bin_dir, "replay/replay_server")
    if "replay" in which:
        check("replay_server", [shard, "--port=0"], ["replay_server listening on "])
        check("replay_server", [shard, "--port=0", "--metrics_port=0"],
              ["replay_server listening on ", "replay_server: metrics on "])
        check("replay_server", [shard, "--port=0", "--metrics_port=0",
                                "--metrics_host=127.0.0.2"],
              ["replay_server listening on 127.0.0.1:", "replay_server: metrics on 127.0.0.2:"])
    if "learner" in which:
        learner = [os.path.join(bin_dir, "learner/learner_main"), "--replay=127.0.0.1:1",
                   "--device=cpu", "--port=0"]
        check("learner_main", learner, ["learner listening on "])
        check("learner_main", learner + ["--metrics_port=0"],
              ["learner metrics on ", "learner listening on "])
        check("learner_main", learner + ["--metrics_port=0", "--metrics_host=127.0.0.2"],
              ["learner metrics on 127.0.0.2:", "learner listening on 127.0.0.1:"])
    print(f"listen ports: {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
