"""Burns CPU in a busy loop: RLIMIT_CPU (SIGXCPU) must end it before the wall-clock timeout."""


def handler():
    n = 0
    while True:
        n += 1
