"""softq's Python side: actors that step Gymnasium-style environments (softq.actor) with the
C++ actor's own pieces, exposed by the extension module _softq_actor (python/softq/BUILD).

Run from a checkout after `bazel build //python/softq:_softq_actor.so`:
  PYTHONPATH=python /usr/bin/python3 -m softq.actor --help
The module is found beside these files (Bazel runfiles) or in the checkout's
bazel-bin/python/softq/ (or in $SOFTQ_MODULE_DIR).
"""
import os

_here = os.path.dirname(os.path.abspath(__file__))
for _dir in (os.environ.get("SOFTQ_MODULE_DIR", ""),
             os.path.join(_here, "..", "..", "bazel-bin", "python", "softq")):
    if _dir and os.path.isdir(_dir) and _dir not in __path__:
        __path__.append(_dir)
