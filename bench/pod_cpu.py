"""Split `perf script -F comm,pid,tid,time,ip,sym` of the throughput harness (bench/pod_cpu.sh)
by who took each sample and in which system call, as microseconds of CPU per pod.

usage: perf script ... | python3 pod_cpu.py PODS SECONDS FREQUENCY
"""
import collections
import re
import sys

HEAD = re.compile(r"\s*(\S.*?)\s+(\d+)/(\d+)\s+([\d.]+):")
# Where a sample's kernel part starts: a system call's entry, a page fault, the child's first
# return from fork.
ENTRIES = ("__x64_sys_", "__do_sys_")
OTHER_ENTRIES = ("asm_exc_page_fault", "ret_from_fork_asm", "do_seccomp")


def samples(lines):
    """(comm, pid, tid, time, frames innermost first) per sample."""
    head, frames = None, []
    for line in lines:
        m = HEAD.match(line)
        if m:
            if head:
                yield (*head, frames)
            head = (m.group(1), int(m.group(2)), int(m.group(3)), float(m.group(4)))
            frames = []
        elif line.strip() and head:
            parts = line.strip().split(None, 1)
            frames.append(parts[1] if len(parts) > 1 else "?")
    if head:
        yield (*head, frames)


def entry(frames):
    """The outermost kernel entry of a sample's stack, or else its innermost frame (user space, or
    the kernel outside a system call: the scheduler, interrupts)."""
    found = [f for f in frames if f.startswith(ENTRIES) or f in OTHER_ENTRIES]
    if found:
        # seccomp(2) is entered as __do_sys_seccomp; its attach is do_seccomp either way.
        return "do_seccomp" if "do_seccomp" in frames else found[-1]
    return "in " + (frames[0] if frames else "?")


def main():
    pods, seconds, freq = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
    all_samples = list(samples(sys.stdin))
    mounts = [s[3] for s in all_samples if "__x64_sys_mount" in s[4]]
    if not mounts or pods <= 0:
        sys.exit("pod_cpu.py: no pod made a mount in this recording")
    start = min(mounts)
    window = [s for s in all_samples if start <= s[3] < start + seconds]
    # The host: the process whose thread is the runtime's (named invite-reaper).
    host = next((s[1] for s in window if s[0] == "invite-reaper"), None)
    per_pod = 1e6 / freq / pods

    def who(comm, pid, tid):
        if pid == host:
            return "host thread calling ckpt()" if tid == pid else "runtime thread (" + comm + ")"
        if comm == "throughput":
            return "the pods (test processes)"
        return comm

    by_who = collections.Counter()
    by_entry = collections.defaultdict(collections.Counter)
    for comm, pid, tid, _, frames in window:
        w = who(comm, pid, tid)
        by_who[w] += 1
        by_entry[w][entry(frames)] += 1
    total = sum(by_who.values())
    print(f"{total * per_pod:.0f} us of CPU per pod in all ({pods} pods, {seconds:g} s, {freq:g} Hz)")
    print("\n| where | us per pod | largest parts (us per pod) |\n|---|---:|---|")
    for w, n in by_who.most_common(8):
        parts = ", ".join(f"{e} {c * per_pod:.0f}" for e, c in by_entry[w].most_common(8))
        print(f"| {w} | {n * per_pod:.0f} | {parts} |")


if __name__ == "__main__":
    main()
