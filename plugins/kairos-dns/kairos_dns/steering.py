"""Kernel steering of SO_REUSEPORT sockets by client address (Linux classic BPF).

With `kairos serve --workers N` every worker binds the DNS port with SO_REUSEPORT. The kernel
would spread one client's packets over the workers by (address, port) hash, so a per-client
limit kept in each worker would let a client with many source ports (or a spoofed flood) have
N times its budget. This program picks the socket from the source address alone: every packet
of one address reaches the same worker, and per-worker limits hold for the whole gateway.
"""

from __future__ import annotations

import ctypes
import logging
import socket
import struct

log = logging.getLogger("kairos.dns")

SO_ATTACH_REUSEPORT_CBPF = 51
_NET = 0x100000  # SKF_NET_OFF: offsets relative to the IP header
_LD_B_ABS, _LD_W_ABS = 0x30, 0x20
_RSH_K, _MUL_K, _MOD_K = 0x74, 0x24, 0x94
_JEQ_K, _JA, _RET_A = 0x15, 0x05, 0x16


def steering_program(sockets: int) -> list[tuple[int, int, int, int]]:
    """Socket index = hash(source address) % sockets, for IPv4 and IPv6 packets."""
    return [
        (_LD_B_ABS, 0, 0, -_NET & 0xFFFFFFFF),  # A = first byte of the IP header
        (_RSH_K, 0, 0, 4),  # A = IP version
        (_JEQ_K, 0, 2, 4),  # IPv4? else jump to the IPv6 load
        (_LD_W_ABS, 0, 0, (12 - _NET) & 0xFFFFFFFF),  # IPv4 source address
        (_JA, 0, 0, 1),
        (_LD_W_ABS, 0, 0, (20 - _NET) & 0xFFFFFFFF),  # last 32 bits of the IPv6 source
        (_MUL_K, 0, 0, 0x9E3779B1),  # spread neighbouring addresses
        (_RSH_K, 0, 0, 16),
        (_MOD_K, 0, 0, sockets),
        (_RET_A, 0, 0, 0),
    ]


def steer_by_client(sock: socket.socket, sockets: int) -> bool:
    """Attach the program to `sock`'s reuseport group; False where the kernel cannot."""
    code = b"".join(struct.pack("HBBI", *insn) for insn in steering_program(sockets))
    buffer = ctypes.create_string_buffer(code)
    fprog = struct.pack("HP", len(code) // 8, ctypes.addressof(buffer))
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, fprog)
    except OSError as exc:
        log.warning(
            "cannot steer DNS clients to workers (%s): per-client rate limits apply per worker",
            exc,
        )
        return False
    return True
