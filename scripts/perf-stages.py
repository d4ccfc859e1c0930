#!/usr/bin/env python3
"""Splits a server profile into the stages of an op (docs/PERFORMANCE.md, "Per-op cost").

    perf record -F 1999 -g -p PID -o perf.data -- sleep 15
    perf script -i perf.data -F comm,tid,ip,sym,dso > perf.txt
    scripts/perf-stages.py perf.txt [CPU_MS_PER_OP]      (or - for standard input)

The server must run with DOTNET_PerfMapEnabled=1 and DOTNET_EnableWriteXorExecute=0 so that
JIT-compiled frames have names. Each sample goes to the first stage whose frames it contains
(the order below matters: a socket send under our broadcast is fan-out's, a syscall under
SQLite is the commit's). Kernel stacks entered through libc stop at libc (no frame pointers),
so those samples are placed by their syscall alone.
"""
import collections
import re
import sys


def read_samples(path):
    samples, current = [], None
    for line in (sys.stdin if path == "-" else open(path, errors="replace")):
        if not line.strip():
            if current:
                samples.append(current)
            current = None
        elif not line[0].isspace():
            match = re.match(r"(.*?)\s+(\d+)\s*$", line.rstrip())
            current = (match.group(1) if match else line.strip(), [])
        elif current is not None:
            current[1].append(line.strip())
    if current:
        samples.append(current)
    return samples


def has(stack, *patterns):
    return any(p in frame for frame in stack for p in patterns)


STAGES = [
    ("JIT compiler (tier-up)",
     lambda thread, st: "Tiered Com" in thread or has(st, "libclrjit")),
    ("GC",
     lambda thread, st: thread.startswith(".NET BGC") or has(st, "GarbageCollect", "gc_heap")),
    ("commit: SQLite, WAL writes, fsync",
     lambda thread, st: has(st, "CommitPipeline+Commit::Run", "SqliteDocumentStore", "libe_sqlite3",
                            "__x64_sys_fsync", "__x64_sys_fdatasync", "__x64_sys_pwrite64", "__x64_sys_pread64")),
    ("sequence: OT transform and apply, the actor's loop",
     lambda thread, st: has(st, "DocumentActor::Sequence", "Sequencer::", "Collab.Ot")),
    ("ack: SignalR's completion to the writer",
     lambda thread, st: has(st, "DefaultHubDispatcher") and has(st, "HubConnectionContext::Write")),
    ("fan-out: our broadcast and each member's pump writing into SignalR",
     lambda thread, st: has(st, "Membership::Broadcast", "ClientConnection::Send", "ClientConnection+<PumpAsync>", "CompleteCommit")),
    ("send: WebSocket framing and Kestrel's socket sends (acks and broadcasts)",
     lambda thread, st: has(st, "__x64_sys_sendto", "__send", "tcp_sendmsg", "SocketSender", "DoSend", "<StartSending>",
                            "ManagedWebSocket::Send", "HubConnectionContext::Write", "SendFrame")),
    ("receive: socket read, WebSocket and SignalR decode, hub dispatch, post to the actor",
     lambda thread, st: thread.startswith(".NET SocketEng") or has(
         st, "__x64_sys_recvfrom", "__recv", "tcp_recvmsg", "DoReceive", "<StartReceiving>", "ManagedWebSocket::Receive",
         "DispatchMessagesAsync", "MessagePackHubProtocol", "TryParseMessage", "DefaultHubDispatcher", "CollabHub",
         "PostAsync", "SocketAsyncEngine", "epoll")),
    ("thread hand-offs: sleep, wake-up, scheduler, thread-pool dispatch",
     lambda thread, st: has(st, "__x64_sys_futex", "finish_task_switch", "schedule", "sched_yield", "LowLevelLifoSemaphore",
                            "LowLevelMonitor", "ThreadPoolWorkQueue::Dispatch", "pthread_cond", "futex")),
]


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    samples = read_samples(sys.argv[1])
    cpu_ms = float(sys.argv[2]) if len(sys.argv) > 2 else None
    counts = collections.Counter()
    for thread, stack in samples:
        counts[next((name for name, rule in STAGES if rule(thread, stack)), "other: timers, metrics, libc, runtime stubs")] += 1
    total = sum(counts.values()) or 1
    print(f"| stage | share of server CPU |{' µs per op |' if cpu_ms else ''}")
    print(f"|---|---|{'---|' if cpu_ms else ''}")
    for name in [s for s, _ in STAGES] + ["other: timers, metrics, libc, runtime stubs"]:
        row = f"| {name} | {100 * counts[name] / total:.1f} % |"
        if cpu_ms:
            row += f" {cpu_ms * 1000 * counts[name] / total:.0f} |"
        print(row)
    print(f"\n{total} samples")


if __name__ == "__main__":
    main()
