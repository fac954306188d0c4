"""Hostile clients for ./bench/run.sh abuse, on 127.0.0.1 only, until killed:
  slowloris: 1,100 connections from 20 loopback addresses, each trickling a header line every second,
             reconnecting when bcd drops it;
  flood:     anonymous pushes declaring 16 MiB bodies, and anonymous GETs of a job, as fast as they go;
  metrics:   four clients looping on /metrics.
Prints what it did when it gets SIGTERM."""
import signal
import socket
import sys
import threading
import time

port = int(sys.argv[1])
stop = threading.Event()
counts = {"slowloris_reconnects": 0, "flood_requests": 0, "metrics_requests": 0}
lock = threading.Lock()


def bump(name, n=1):
    with lock:
        counts[name] += n


def connect(src):
    s = socket.socket()
    s.bind((src, 0))
    s.settimeout(2)
    s.connect(("127.0.0.1", port))
    return s


def slowloris(addresses, per_address):
    socks = []
    for a in addresses:
        for _ in range(per_address):
            try:
                s = connect(a)
                s.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n")
                socks.append([a, s])
            except OSError:
                pass
    while not stop.is_set():
        time.sleep(1)
        for entry in socks:
            try:
                entry[1].sendall(b"X-Slow: 1\r\n")
            except OSError:
                entry[1].close()
                try:
                    entry[1] = connect(entry[0])
                    entry[1].sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n")
                    bump("slowloris_reconnects")
                except OSError:
                    pass


def request_loop(src, raw, counter):
    while not stop.is_set():
        try:
            s = connect(src)
            s.sendall(raw)
            s.recv(4096)
            s.close()
            bump(counter)
        except OSError:
            time.sleep(0.01)


threads = [threading.Thread(target=slowloris, args=([f"127.0.10.{i}" for i in range(1, 21)], 55), daemon=True)]
anonymous_push = (b"POST /api/v1/ingest HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
                  b"Content-Length: 16777216\r\n\r\n")
for i in range(2):
    threads.append(threading.Thread(target=request_loop, args=(f"127.0.11.{i + 1}", anonymous_push, "flood_requests"),
                                    daemon=True))
threads.append(threading.Thread(target=request_loop, args=("127.0.11.9", b"GET /api/v1/jobs/1000 HTTP/1.1\r\nHost: x\r\n\r\n",
                                                           "flood_requests"), daemon=True))
for i in range(4):
    threads.append(threading.Thread(target=request_loop, args=(f"127.0.12.{i + 1}", b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
                                                               "metrics_requests"), daemon=True))
signal.signal(signal.SIGTERM, lambda *_: stop.set())
for t in threads:
    t.start()
while not stop.is_set():
    time.sleep(0.2)
print(" ".join(f"{k} {v}" for k, v in counts.items()), flush=True)
