"""The double-buffered tile pipeline of :class:`sim.engine.components.TilePipeline`, compiled.

A minimal discrete-event simulator specialised to that one simpy model. It reproduces
simpy's semantics step for step rather than a closed form, so its cycles, stalls and busy
cycles are the simpy model's exactly, ties included:

- events run in the order of simpy's heap key ``(time, priority, event id)``: an event id
  is drawn when an event is *scheduled*, process starts are URGENT (0), all else NORMAL (1)
  (kept here as two FIFOs of the events scheduled at the current time, URGENT and NORMAL,
  and a heap of the timeouts, which drew their ids before anything scheduled now);
- an event's callbacks run in simpy's order (a resource event's own trigger first, then the
  waiter), and a resumed process runs on until its next ``yield``, scheduling as it goes;
- a ``Resource`` (DRAM: 1 user, SRAM: ``ports``, PE array: 1) keeps a FIFO queue; creating
  a request, or processing a release, tries only the queue's head (simpy's ``_trigger_put``
  stops after one); a release frees the slot at once and triggers when it is processed;
- the ``Container`` of free tile buffers and the ``Store`` of fetched tiles grant a waiting
  get when the matching put *event is processed*, a get that finds stock at once;
- the compute's ``pe_req & port`` is an AllOf: both requests are issued (PE first), and the
  condition is scheduled when the second of them is processed; it resumes the compute when
  it is processed in turn;
- write-back processes start (URGENT) after the compute has freed its buffer; the final
  ``all_of(pending)`` counts those already processed when it is built and the rest as they
  are processed.

The loader's end is not scheduled (no one waits on it: leaving it out keeps every other
event's relative order), and the run stops where simpy's ``run(until=done)`` does: at the
compute's end. The simpy model (``TilePipeline`` with timing ``simpy``) is the plain-Python
reference; tests/test_tile_pipeline_fast.py holds them equal on random workloads.

All quantities are int64; the caller keeps them below 2**53 (where ``ceil(a / b)`` of
floats equals the exact integer ceiling, as Python computes it) and the makespan below 2**62.
"""

from __future__ import annotations

import numpy as np
from numba import njit

# owners: 0 the loader, 1 the compute, 2 + k the write-back of tile k
_LOADER, _COMPUTE = 0, 1
# resources
_DRAM, _SRAM, _PE = 0, 1, 2
# event types
_EV_INIT = 0        # a process starts (URGENT); arg: owner
_EV_TIMEOUT = 1     # arg: owner
_EV_REQ = 2         # a granted request; arg: owner * 4 + resource
_EV_REL = 3         # a release; arg: resource
_EV_FGET = 4        # the loader got a free buffer
_EV_FPUT = 5        # the compute freed a buffer
_EV_SPUT = 6        # the loader put a fetched tile
_EV_SGET = 7        # the compute got a fetched tile
_EV_COND = 8        # pe_req & port
_EV_WTERM = 9       # a write-back ended; arg: owner
_EV_ALLOF = 10      # every write-back ended


@njit(cache=True)
def _push(ht, he, hpay, size, t, e, pay):
    """Push a timeout (expiry ``t``, event id ``e``) on the min-heap keyed (t, e)."""
    i = size
    while i > 0:
        parent = (i - 1) >> 1
        if ht[parent] < t or (ht[parent] == t and he[parent] < e):
            break
        ht[i], he[i], hpay[i] = ht[parent], he[parent], hpay[parent]
        i = parent
    ht[i], he[i], hpay[i] = t, e, pay
    return size + 1


@njit(cache=True)
def _pop(ht, he, hpay, size):
    """Remove the root (read it before calling); returns the new size."""
    size -= 1
    t, e, pay = ht[size], he[size], hpay[size]
    i = 0
    while True:
        c = 2 * i + 1
        if c >= size:
            break
        if c + 1 < size and (ht[c + 1] < ht[c] or (ht[c + 1] == ht[c] and he[c + 1] < he[c])):
            c += 1
        if t < ht[c] or (t == ht[c] and e < he[c]):
            break
        ht[i], he[i], hpay[i] = ht[c], he[c], hpay[c]
        i = c
    ht[i], he[i], hpay[i] = t, e, pay
    return size


@njit(cache=True)
def _timeout(ht, he, hpay, size, eid, fq, ftail, qn, now, delay, pay):
    """Schedule a timeout: on the heap, or (no delay) behind the events scheduled now."""
    if delay == 0:
        fq[ftail % qn] = pay
        return size, eid, ftail + 1
    return _push(ht, he, hpay, size, now + delay, eid, pay), eid + 1, ftail


@njit(cache=True, inline="always")
def _grant(rq, rhead, rtail, users, capacity, fq, ftail, qn, r):
    """A Resource's ``_trigger_put``: if a slot of ``r`` is free, grant its FIFO queue's head
    (one request at most). Returns the new ``ftail``."""
    if rhead[r] < rtail[r] and users[r] < capacity[r]:
        users[r] += 1
        o = rq[r, rhead[r]]
        rhead[r] += 1
        fq[ftail % qn] = (o * 4 + r) * 16 + _EV_REQ
        ftail += 1
    return ftail


@njit(cache=True, inline="always")
def _request(rq, rhead, rtail, users, capacity, fq, ftail, qn, r, owner):
    """``resource.request()`` by ``owner``: join ``r``'s FIFO queue, then try its head."""
    rq[r, rtail[r]] = owner
    rtail[r] += 1
    return _grant(rq, rhead, rtail, users, capacity, fq, ftail, qn, r)


@njit(cache=True, inline="always")
def _release(users, fq, ftail, qn, r):
    """A process leaves ``r``: the slot frees at once, the release triggers when processed."""
    users[r] -= 1
    fq[ftail % qn] = r * 16 + _EV_REL
    return ftail + 1


@njit(cache=True)
def _ceil_cycles(bits, latency, per_cycle):
    """``0 if bits <= 0 else latency + ceil(bits / per_cycle)`` (Dram/Sram/PEArray.cycles)."""
    if bits <= 0:
        return 0
    return latency + (bits + per_cycle - 1) // per_cycle


@njit(cache=True)
def tile_pipeline(dram_in, sram_bits, pe_ops, dram_out, dram_bandwidth, dram_latency,
                  sram_ports, sram_bits_per_cycle, sram_latency, pe_ops_per_cycle, buffers):
    """One ``TilePipeline.run`` from time 0 with every unit idle.

    Tiles are the four int64 arrays (a tile's fields, in order); ``buffers`` tile buffers
    (the Container's capacity, DOUBLE_BUFFERED). Returns ``(cycles, stall,
    done, tail, dram_busy, sram_busy, pe_busy)``: the makespan; per tile the cycles the
    compute waited for it and the time its compute ended (its buffer freed); the cycles from
    the last compute's end to the last write-back's end (0 when there is none); and the busy
    cycles each unit accumulates.
    """
    n = dram_in.shape[0]
    stall = np.zeros(n, dtype=np.int64)
    done = np.zeros(n, dtype=np.int64)
    if n == 0:
        return 0, stall, done, 0, 0, 0, 0
    # per-tile durations
    d_in = np.empty(n, dtype=np.int64)     # the fetch: DRAM
    s_in = np.empty(n, dtype=np.int64)     # the fill: SRAM
    c_pe = np.empty(n, dtype=np.int64)     # PE cycles
    c_sr = np.empty(n, dtype=np.int64)     # SRAM cycles of the compute
    s_out = np.empty(n, dtype=np.int64)    # write-back: SRAM
    d_out = np.empty(n, dtype=np.int64)    # write-back: DRAM
    for i in range(n):
        d_in[i] = _ceil_cycles(dram_in[i], dram_latency, dram_bandwidth)
        s_in[i] = _ceil_cycles(dram_in[i], sram_latency, sram_bits_per_cycle)
        c_pe[i] = _ceil_cycles(pe_ops[i], 0, pe_ops_per_cycle)
        c_sr[i] = _ceil_cycles(sram_bits[i], sram_latency, sram_bits_per_cycle)
        s_out[i] = _ceil_cycles(dram_out[i], sram_latency, sram_bits_per_cycle)
        d_out[i] = _ceil_cycles(dram_out[i], dram_latency, dram_bandwidth)

    # simpy's queue, keyed (time, priority, event id), kept as three parts that pop in that
    # order: at the current time the URGENT events (process starts) first, then the timeouts
    # expiring now (scheduled earlier: smaller ids), then the NORMAL events scheduled now, in
    # the order scheduled; the later timeouts wait on a heap keyed (time, id). An event's
    # payload is owner-or-argument * 16 + type.
    qn = 4 * n + 16    # more than the events pending at once: a few per live process
    uq = np.empty(qn, dtype=np.int64)  # URGENT now (a ring)
    uhead = 0
    utail = 0
    fq = np.empty(qn, dtype=np.int64)  # NORMAL now (a ring)
    fhead = 0
    ftail = 0
    ht = np.empty(qn, dtype=np.int64)  # the timeouts' heap: expiry, event id, payload
    he = np.empty(qn, dtype=np.int64)
    hpay = np.empty(qn, dtype=np.int64)
    size = 0
    eid = 0            # ids drawn by timeouts (the only events whose ids are compared)
    # resources: FIFO request queues of owners (heads only move forward)
    qcap = 3 * n + 4
    rq = np.empty((3, qcap), dtype=np.int64)
    rhead = np.zeros(3, dtype=np.int64)
    rtail = np.zeros(3, dtype=np.int64)
    users = np.zeros(3, dtype=np.int64)
    capacity = np.array([1, sram_ports, 1], dtype=np.int64)
    # containers
    level = buffers    # free tile buffers
    fget_waiting = False
    items = 0          # fetched tiles in the store
    sget_waiting = False
    # processes
    li = 0             # the loader's tile
    lphase = 0
    ci = 0             # the compute's tile
    cphase = 0
    t0 = 0
    cond_count = 0
    npending = 0
    allof_built = False
    allof_count = 0
    wphase = np.zeros(n, dtype=np.int64)
    wprocessed = np.zeros(n, dtype=np.bool_)
    tail = 0
    last = 0
    dram_busy = 0
    sram_busy = 0
    pe_busy = 0
    now = 0

    # env.process(loader()), env.process(compute())
    uq[utail % qn] = _LOADER * 16 + _EV_INIT
    utail += 1
    uq[utail % qn] = _COMPUTE * 16 + _EV_INIT
    utail += 1

    finished = False
    while not finished:
        if uhead < utail:
            pay = uq[uhead % qn]
            uhead += 1
        elif size > 0 and ht[0] == now:
            pay = hpay[0]
            size = _pop(ht, he, hpay, size)
        elif fhead < ftail:
            pay = fq[fhead % qn]
            fhead += 1
        elif size > 0:  # time moves on
            now = ht[0]
            pay = hpay[0]
            size = _pop(ht, he, hpay, size)
        else:  # cannot happen: the model always completes
            raise RuntimeError("tile pipeline: no events left")
        ty = pay & 15
        arg = pay >> 4

        owner = -1  # the process this event resumes
        if ty == _EV_INIT or ty == _EV_TIMEOUT:
            owner = arg
        elif ty == _EV_REQ:
            o = arg >> 2
            if o == _COMPUTE:  # the AllOf's check
                cond_count += 1
                if cond_count == 2:
                    fq[ftail % qn] = _EV_COND
                    ftail += 1
            else:
                owner = o
        elif ty == _EV_REL:
            r = arg
            ftail = _grant(rq, rhead, rtail, users, capacity, fq, ftail, qn, r)
        elif ty == _EV_FGET:
            owner = _LOADER
        elif ty == _EV_FPUT:
            if fget_waiting and level >= 1:  # the container serves the loader's get
                level -= 1
                fget_waiting = False
                fq[ftail % qn] = _EV_FGET
                ftail += 1
            owner = _COMPUTE
        elif ty == _EV_SPUT:
            if sget_waiting and items > 0:  # the store serves the compute's get
                items -= 1
                sget_waiting = False
                fq[ftail % qn] = _EV_SGET
                ftail += 1
            owner = _LOADER
        elif ty == _EV_SGET or ty == _EV_COND or ty == _EV_ALLOF:
            owner = _COMPUTE
        elif ty == _EV_WTERM:
            wprocessed[arg - 2] = True
            if allof_built:
                allof_count += 1
                if allof_count == npending:
                    fq[ftail % qn] = _EV_ALLOF
                    ftail += 1

        if owner == _LOADER:
            # phases: 0 start / a tile put, 1 free buffer got, 2 DRAM granted, 3 DRAM done,
            # 4 port granted, 5 fill done
            while True:  # runs until the loader yields
                if lphase == 0:
                    if li >= n:
                        lphase = -1  # ended (its end event has no waiter)
                        break
                    fget_waiting = True  # free.get(1)
                    if level >= 1:
                        level -= 1
                        fget_waiting = False
                        fq[ftail % qn] = _EV_FGET
                        ftail += 1
                    lphase = 1
                    break
                elif lphase == 1:
                    if dram_in[li] > 0:  # dram.transfer: request the channel
                        r = _DRAM
                        ftail = _request(rq, rhead, rtail, users, capacity, fq, ftail, qn, r, _LOADER)
                        lphase = 2
                        break
                    # nothing to fetch or fill: store.put(tile)
                    items += 1
                    fq[ftail % qn] = _EV_SPUT
                    ftail += 1
                    lphase = 6
                    break
                elif lphase == 2:
                    size, eid, ftail = _timeout(ht, he, hpay, size, eid, fq, ftail, qn, now,
                                                  d_in[li], _LOADER * 16 + _EV_TIMEOUT)
                    lphase = 3
                    break
                elif lphase == 3:
                    dram_busy += d_in[li]
                    ftail = _release(users, fq, ftail, qn, _DRAM)  # release: the slot frees now, the release triggers later
                    r = _SRAM  # the fill: sram.access
                    ftail = _request(rq, rhead, rtail, users, capacity, fq, ftail, qn, r, _LOADER)
                    lphase = 4
                    break
                elif lphase == 4:
                    size, eid, ftail = _timeout(ht, he, hpay, size, eid, fq, ftail, qn, now,
                                                  s_in[li], _LOADER * 16 + _EV_TIMEOUT)
                    lphase = 5
                    break
                elif lphase == 5:
                    sram_busy += s_in[li]
                    ftail = _release(users, fq, ftail, qn, _SRAM)
                    items += 1  # store.put(tile)
                    fq[ftail % qn] = _EV_SPUT
                    ftail += 1
                    lphase = 6
                    break
                else:  # lphase 6: the put processed, next tile
                    li += 1
                    lphase = 0

        elif owner == _COMPUTE:
            # phases: 0 start, 1 tile got, 2 both granted, 3 compute done, 4 buffer freed,
            # 5 every write-back ended
            while True:
                if cphase == 0 or cphase == 10:  # 10: the next tile's get
                    if cphase == 0:
                        last = now
                    t0 = now
                    sget_waiting = True  # store.get()
                    if items > 0:
                        items -= 1
                        sget_waiting = False
                        fq[ftail % qn] = _EV_SGET
                        ftail += 1
                    cphase = 1
                    break
                elif cphase == 1:
                    stall[ci] = now - t0
                    # pe.request(), then sram.request(): each tries its queue's head
                    r = _PE
                    ftail = _request(rq, rhead, rtail, users, capacity, fq, ftail, qn, r, _COMPUTE)
                    r = _SRAM
                    ftail = _request(rq, rhead, rtail, users, capacity, fq, ftail, qn, r, _COMPUTE)
                    cond_count = 0
                    cphase = 2
                    break
                elif cphase == 2:
                    c = c_pe[ci] if c_pe[ci] > c_sr[ci] else c_sr[ci]
                    size, eid, ftail = _timeout(ht, he, hpay, size, eid, fq, ftail, qn, now,
                                                  c, _COMPUTE * 16 + _EV_TIMEOUT)
                    cphase = 3
                    break
                elif cphase == 3:
                    pe_busy += c_pe[ci]
                    sram_busy += c_sr[ci]
                    # leaving the with: the port is released first, then the PE array
                    ftail = _release(users, fq, ftail, qn, _SRAM)
                    ftail = _release(users, fq, ftail, qn, _PE)
                    level += 1  # free.put(1)
                    fq[ftail % qn] = _EV_FPUT
                    ftail += 1
                    cphase = 4
                    break
                elif cphase == 4:
                    if dram_out[ci] != 0:  # env.process(writeback(...))
                        uq[utail % qn] = (2 + ci) * 16 + _EV_INIT
                        utail += 1
                        wphase[ci] = 1
                        npending += 1
                    done[ci] = now
                    last = now
                    ci += 1
                    if ci < n:
                        cphase = 10
                        continue
                    if npending == 0:
                        finished = True
                        break
                    # env.all_of(pending): the write-backs already processed count now
                    allof_built = True
                    allof_count = 0
                    for k in range(n):
                        if wphase[k] != 0 and wprocessed[k]:
                            allof_count += 1
                    if allof_count == npending:
                        fq[ftail % qn] = _EV_ALLOF
                        ftail += 1
                    cphase = 5
                    break
                else:  # cphase 5: all write-backs ended
                    tail = now - last
                    finished = True
                    break

        elif owner >= 2:
            k = owner - 2
            b = dram_out[k]
            # phases: 1 started, 2 port granted, 3 read done, 4 channel granted, 5 transfer done
            while True:
                ph = wphase[k]
                if ph == 1:
                    if b <= 0:  # nothing to move: the process ends at once
                        wphase[k] = 6
                        fq[ftail % qn] = owner * 16 + _EV_WTERM
                        ftail += 1
                        break
                    r = _SRAM
                    ftail = _request(rq, rhead, rtail, users, capacity, fq, ftail, qn, r, owner)
                    wphase[k] = 2
                    break
                elif ph == 2:
                    size, eid, ftail = _timeout(ht, he, hpay, size, eid, fq, ftail, qn, now,
                                                  s_out[k], owner * 16 + _EV_TIMEOUT)
                    wphase[k] = 3
                    break
                elif ph == 3:
                    sram_busy += s_out[k]
                    ftail = _release(users, fq, ftail, qn, _SRAM)
                    r = _DRAM
                    ftail = _request(rq, rhead, rtail, users, capacity, fq, ftail, qn, r, owner)
                    wphase[k] = 4
                    break
                elif ph == 4:
                    size, eid, ftail = _timeout(ht, he, hpay, size, eid, fq, ftail, qn, now,
                                                  d_out[k], owner * 16 + _EV_TIMEOUT)
                    wphase[k] = 5
                    break
                else:  # ph 5
                    dram_busy += d_out[k]
                    ftail = _release(users, fq, ftail, qn, _DRAM)
                    wphase[k] = 6
                    fq[ftail % qn] = owner * 16 + _EV_WTERM
                    ftail += 1
                    break

    return now, stall, done, tail, dram_busy, sram_busy, pe_busy
