#!/usr/bin/env python3
"""Registers users, then sends a storm of sign-ins, sampling the server's resident memory.

    scripts/login-storm.py PID [BASE_URL] [USERS] [LOGINS] [CLIENTS]

PID is the running `tanhui serve`; BASE_URL defaults to http://127.0.0.1:8080, then 64 users, 500
sign-ins, 64 concurrent clients. Prints VmRSS (MiB) and thread count before, at the peak during, right
after and 10 s after the storm, and the answers by status. Standard library only.
"""

import json
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

PASSWORD = "correct horse battery"


def status_of(pid):
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["Threads"])


def post(base, path, body):
    request = urllib.request.Request(
        base + path, data=json.dumps(body).encode(), headers={"content-type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return "error"


def main():
    pid = int(sys.argv[1])
    base = sys.argv[2] if len(sys.argv) > 2 else "http://127.0.0.1:8080"
    users = int(sys.argv[3]) if len(sys.argv) > 3 else 64
    logins = int(sys.argv[4]) if len(sys.argv) > 4 else 500
    clients = int(sys.argv[5]) if len(sys.argv) > 5 else 64
    phones = [f"139{n:08d}" for n in range(users)]

    idle = status_of(pid)
    with ThreadPoolExecutor(16) as pool:
        registered = Counter(pool.map(lambda p: post(base, "/api/v1/auth/register", {
            "phone": p, "password": PASSWORD, "display_name": "压测", "account_type": "individual",
            "region_code": "440300"}), phones))
    before = status_of(pid)

    peak = list(before)
    done = threading.Event()

    def sample():
        while not done.is_set():
            rss, threads = status_of(pid)
            peak[0], peak[1] = max(peak[0], rss), max(peak[1], threads)
            time.sleep(0.05)

    sampler = threading.Thread(target=sample)
    sampler.start()
    started = time.monotonic()
    with ThreadPoolExecutor(clients) as pool:
        answers = Counter(pool.map(
            lambda i: post(base, "/api/v1/auth/login", {"phone": phones[i % users], "password": PASSWORD}),
            range(logins)))
    elapsed = time.monotonic() - started
    done.set()
    sampler.join()
    after = status_of(pid)
    time.sleep(10)
    later = status_of(pid)

    print(f"registrations: {dict(registered)}")
    print(f"sign-ins: {dict(answers)} in {elapsed:.1f} s")
    for name, (rss, threads) in [("idle", idle), ("after registering", before), ("storm peak", peak),
                                 ("right after", after), ("10 s after", later)]:
        print(f"{name:>18}: VmRSS {rss:7.1f} MiB, {threads} threads")


if __name__ == "__main__":
    main()
