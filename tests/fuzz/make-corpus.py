#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Writes the seed corpora of the libFuzzer targets: tests/fuzz/corpus/uapi and corpus/va.

Deterministic (fixed seeds): running it again rewrites the same files. The input formats are
described at the top of uapi.c and va.c; the step numbers below mirror uapi.c's dispatch.

    python3 tests/fuzz/make-corpus.py [OUTDIR]   (default: tests/fuzz/corpus)
"""
import os
import random
import sys

# uapi.c: what a step does (op % 64)
BIND, BO_CREATE, BO_DESTROY, BO_MISC = 0, 22, 26, 27
VM_CREATE, VM_DESTROY, BQ_CREATE, BQ_DESTROY = 28, 30, 31, 32
SYNC_CREATE, SYNC_DESTROY, SYNC_ARRAY, SYNC_WAIT, SYNC_TRANSFER, SYNC_FD, UFENCE_WAIT = 33, 35, 36, 38, 39, 40, 41
EXQ_CREATE, EXQ_DESTROY, EXQ_QUERY, EXEC, ACCESS = 42, 44, 45, 46, 52
QUERIES, TRACE, VALIDATE, OPEN_GATES, CHECKPOINT = 55, 56, 57, 58, 59
SYNC_STATUS, FAULT_API = 60, 61

# exec_queue_create's first argument: engine (bits 0-1), the Intel command set (bit 6)
EXQ_INTEL = 0x40
# a step's injection byte: >= 244 the (256 - inj)-th host allocation fails; 243, 242 the 1st, 2nd
# page-table page; 241 the 1st thread; 240 the 1st host mapping
INJ_PT_PAGE, INJ_THREAD = 243, 241

# vm_create's first argument: flags (bits 0-1), va size (2-3), page sizes (4-6)
VM_PLAIN, VM_SCRATCH, VM_LR = 0x00, 0x01, 0x02


# Most steps read their arguments as: a "kind" byte, a fault byte (0: no fault), then picks of
# live objects (2 bytes each) and whatever else the step needs.


class Uapi:
    def __init__(self, seed, cfg=0x22):
        self.r = random.Random(seed)
        # header: cfg (VRAM bits 0-1: 16/32/64/32 MiB, SYSTEM bit 2: 16/64 MiB, page-table pool
        # bits 3-5: 64K/256K/4M/16M/4M/4M/1M/4M), then the seed
        self.b = bytearray([cfg, self.r.randrange(256), self.r.randrange(256)])

    def args(self, n, zero=0.5):
        """n argument bytes, many of them zero (zero: the common valid choice)."""
        return bytes(0 if self.r.random() < zero else self.r.randrange(256) for _ in range(n))

    def step(self, op, args=b"", inj=0):
        self.b += bytes([op, inj, len(args)]) + args

    def vm(self, k=VM_PLAIN):
        self.step(VM_CREATE, bytes([k, 0]))

    def bo(self, k=None):
        # k: size (bits 0-2: 3 is 2 MiB, else a random count of pages in the next 2 bytes),
        # placements (bits 3-4); then a fault byte (0: none)
        k = self.r.randrange(256) if k is None else k
        size = b"" if k & 7 == 3 else bytes([self.r.randrange(256), self.r.randrange(16)])
        self.step(BO_CREATE, bytes([k, 0]) + size)

    def bind(self, async_=False, nops=1, inj=0, zero=0.5):
        k = (1 if async_ else 0) | ((nops - 1) & 3) << 1
        self.step(BIND, bytes([k, 0]) + self.args(40, zero), inj)

    def exec(self):
        self.step(EXEC, bytes([self.r.randrange(6), 0]) + self.args(48, 0.3))

    def unmap(self, inj=0):
        # one UNMAP op (gen_op kind 11), synchronous or not
        self.step(BIND, bytes([self.r.randrange(2), 0, 11]) + self.args(37, 0.3), inj)

    def any(self, op, n=24):
        self.step(op, self.args(n))

    def data(self):
        return bytes(self.b)


def uapi_corpus():
    out = {}

    # Intel exec queues (plain and LR vms), user-fence waits tied to exec queues
    u = Uapi(21)
    u.vm()
    u.vm(VM_LR)
    for _ in range(4):
        u.bo()
    for _ in range(12):
        u.bind()
    for k in (EXQ_INTEL, EXQ_INTEL | 1, EXQ_INTEL | 2, 0):
        u.step(EXQ_CREATE, bytes([k, 0]) + u.args(4))
    for i in range(24):
        u.step(EXEC, bytes([u.r.randrange(6) | (0x40 if i & 1 else 0), 0]) + u.args(48, 0.3))
        if i % 6 == 5:
            u.step(UFENCE_WAIT, bytes([u.r.randrange(256), 0, 1]) + u.args(6))
    u.step(EXQ_QUERY, bytes([0]))
    u.step(CHECKPOINT)
    out["intel-execs"] = u

    # fence status, the fault-injection entry points, unbinds while allocations fail
    u = Uapi(22)
    u.vm()
    for _ in range(3):
        u.bo()
    for _ in range(3):
        u.step(SYNC_CREATE, bytes([u.r.choice((0, 1, 2))]))
    for i in range(20):
        u.bind(async_=bool(i & 1))
        u.step(SYNC_STATUS, bytes([u.r.randrange(256), 0]) + u.args(8))
    for i in range(8):
        u.step(FAULT_API, bytes([u.r.randrange(256), 0]) + u.args(6))
    for i in range(16):
        u.unmap(inj=(244 + i % 12) if i < 12 else (INJ_PT_PAGE, 242, INJ_THREAD, 240)[i - 12])
        u.bind(async_=bool(i & 1))
    u.step(CHECKPOINT)
    for _ in range(4):
        u.step(SYNC_STATUS, bytes([u.r.randrange(256), 0]) + u.args(8))
    out["status-faults-unmaps"] = u

    u = Uapi(1)
    u.vm()
    for _ in range(3):
        u.bo()
    for _ in range(30):
        u.bind()
    u.step(CHECKPOINT)
    for _ in range(10):
        u.step(ACCESS, u.args(8))
    out["sync-binds"] = u

    u = Uapi(2)
    u.vm()
    u.step(BQ_CREATE, b"\0\0")
    u.step(BQ_CREATE, b"\0\0")
    for _ in range(4):
        u.bo()
    u.step(SYNC_CREATE, b"\x00")
    u.step(SYNC_CREATE, b"\x02")  # timeline
    for _ in range(40):
        u.bind(async_=True, nops=1 + u.r.randrange(4))
    u.step(CHECKPOINT)
    out["async-binds"] = u

    u = Uapi(3)
    u.vm()
    for _ in range(2):
        u.bo()
    for _ in range(6):
        u.bind()
    u.step(EXQ_CREATE, b"\x00\x00")
    u.step(EXQ_CREATE, b"\x02\x00")  # the copy engine
    u.step(SYNC_CREATE, b"\x00")
    for _ in range(12):
        u.exec()
    u.step(EXQ_QUERY, b"\x00")
    u.step(CHECKPOINT)
    out["execs"] = u

    u = Uapi(4)
    u.vm(VM_LR)
    u.bo()
    u.bo()
    u.step(SYNC_CREATE, b"\x00")
    for _ in range(8):
        u.bind(async_=True)
    u.step(EXQ_CREATE, b"\x01\x00")
    for _ in range(10):
        u.exec()
    for _ in range(8):
        u.bind(async_=True)
    out["lr-vm"] = u

    u = Uapi(5)
    u.vm(VM_SCRATCH)
    u.bo()
    for _ in range(10):
        u.bind(zero=0.7)
    for _ in range(20):
        u.step(ACCESS, u.args(10, 0.3))
    out["scratch-access"] = u

    u = Uapi(6)
    u.vm()
    u.bo()
    u.bo()
    u.step(SYNC_CREATE, b"\x07")  # a gate
    for _ in range(10):
        u.bind(async_=True, nops=2)
        u.step(SYNC_WAIT, u.args(6))
    u.step(OPEN_GATES)
    u.step(CHECKPOINT)
    out["gates"] = u

    u = Uapi(7)
    u.vm()
    u.vm(VM_SCRATCH)
    for _ in range(4):
        u.bo()
    for _ in range(20):
        u.bind(nops=2)
    u.step(EXQ_CREATE, b"\x00\x00")
    u.exec()
    u.step(VM_DESTROY, b"\x00")
    u.exec()
    u.step(EXQ_DESTROY, b"\x00")
    u.step(CHECKPOINT)
    out["two-vms-destroy"] = u

    u = Uapi(8, cfg=0x20)  # 16 MiB of VRAM
    u.vm()
    for _ in range(6):
        u.bo(0x07)  # up to 4 MiB each
    for _ in range(20):
        u.bind(nops=3)
    out["prefetch-small-vram"] = u

    u = Uapi(9)
    u.vm()
    u.bo()
    u.bo()
    u.step(SYNC_CREATE, b"\x00")
    for i in range(30):
        u.bind(async_=bool(i & 1), nops=2, inj=244 + u.r.randrange(12))
    u.step(CHECKPOINT)
    out["alloc-failures"] = u

    u = Uapi(10, cfg=0x0a)  # a 256 KiB page-table pool
    u.vm()
    u.vm()
    for _ in range(3):
        u.bo()
    for _ in range(40):
        u.bind(nops=1 + u.r.randrange(4))
    out["small-pt-pool"] = u

    u = Uapi(11)
    for k in (0, 1, 2, 3, 7):
        u.step(SYNC_CREATE, bytes([k]))
    u.vm()
    u.bo()
    for _ in range(25):
        u.any(u.r.choice([SYNC_ARRAY, SYNC_WAIT, SYNC_TRANSFER, SYNC_FD, UFENCE_WAIT]), 8)
        u.bind(async_=True)
    out["syncobjs"] = u

    u = Uapi(12)
    u.vm()
    u.vm(VM_LR | 0x10)
    u.vm(VM_PLAIN | 0x30)
    for _ in range(6):
        u.bo()
    for _ in range(10):
        u.step(BQ_CREATE, b"\0\0")
        u.bind(async_=True, nops=4)
        u.step(BQ_DESTROY, b"\0\0")
    u.step(TRACE, b"\x41")
    for _ in range(10):
        u.bind(async_=True)
        u.step(TRACE, b"\x1e")
    out["queues-trace"] = u

    u = Uapi(13)
    u.vm()
    for _ in range(6):
        u.bo()
        u.step(BO_MISC, u.args(4))
    for _ in range(10):
        u.bind()
    for _ in range(4):
        u.step(BO_DESTROY, b"\0")
        u.bind(nops=2)
    u.step(QUERIES, b"\x03")
    out["bo-lifetimes"] = u

    u = Uapi(14)
    for _ in range(120):
        u.step(u.r.randrange(64), u.args(u.r.randrange(30), 0.4), 0 if u.r.random() < 0.9 else 250)
    out["random-steps"] = u

    u = Uapi(15)
    u.vm()
    u.bo()
    u.step(EXQ_CREATE, b"\0\0")
    u.step(SYNC_CREATE, b"\x02")
    for _ in range(15):
        u.bind(async_=True)
        u.exec()
    u.step(VALIDATE, b"\0")
    u.step(CHECKPOINT)
    out["pipeline"] = u

    u = Uapi(16)
    u.vm()
    u.bo(0x03)  # 2 MiB: huge leaves
    u.bo(0x07)
    for _ in range(30):
        u.bind(nops=1, zero=0.8)
    out["huge-pages"] = u

    return {k: v.data() for k, v in out.items()}


def va_corpus():
    out = {}
    for i, name in enumerate(["bottom", "top", "middle"]):
        r = random.Random(100 + i)
        out["random-" + name] = bytes([i]) + bytes(r.randrange(256) for _ in range(600))
    # short ranges only (low bits of the op byte), bottom of the space
    r = random.Random(200)
    b = bytearray([0])
    for _ in range(150):
        b += bytes([r.randrange(4), r.randrange(256) & 0xe3]) + bytes(r.randrange(256) for _ in range(4))
    out["short-ranges"] = bytes(b)
    # single-plan transactions that are kept; then ones that are reverted
    r = random.Random(201)
    b = bytearray([1])
    for i in range(120):
        b += bytes([0x04 if i < 60 else 0xe0]) + bytes(r.randrange(256) for _ in range(5))
    out["keep-then-revert"] = bytes(b)
    # maps of an existing node again (no-ops and continued objs)
    r = random.Random(202)
    b = bytearray([0])
    for _ in range(120):
        b += bytes([r.randrange(4), 0x61 | r.randrange(4) << 2]) + bytes(r.randrange(256) for _ in range(6))
    out["remap-same"] = bytes(b)
    for n in range(6):
        r = random.Random(300 + n)
        out["mixed-%d" % n] = bytes([n % 3]) + bytes(r.randrange(256) for _ in range(200 + 150 * n))
    return out


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
    for sub, files in (("uapi", uapi_corpus()), ("va", va_corpus())):
        d = os.path.join(root, sub)
        os.makedirs(d, exist_ok=True)
        for name, data in sorted(files.items()):
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)
        print("%s: %d files" % (d, len(files)))


if __name__ == "__main__":
    main()
