"""Looks for descriptors it inherited (an open credentials file, a socket, a store) and reads what it can of them."""

import os
import stat


def handler():
    null = os.stat(os.devnull).st_rdev
    open_fds, to_null, read = [], [], {}
    for fd in range(4096):
        try:
            info = os.fstat(fd)
        except OSError:
            continue
        open_fds.append(fd)
        if stat.S_ISCHR(info.st_mode) and info.st_rdev == null:
            to_null.append(fd)
        elif fd != 3 and stat.S_ISREG(info.st_mode):
            read[fd] = os.pread(fd, 4096, 0).decode("utf-8", "replace")
    return {"open": open_fds, "null": to_null, "read": read}
