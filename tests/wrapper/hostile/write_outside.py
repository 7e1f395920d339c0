"""Writes files outside its working directory; fails with the first error after trying every path."""


def handler(paths):
    errors = []
    for path in paths:
        try:
            with open(path, "w") as target:
                target.write("pwned")
        except OSError as exc:
            errors.append(exc)
    if errors:
        raise errors[0]
    return {"written": paths}
