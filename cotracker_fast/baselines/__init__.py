"""Classical trackers shipped with the package, as context for the model's numbers (``make demo`` prints the
Lucas-Kanade error beside the model's).

* :mod:`.lk` -- OpenCV pyramidal Lucas-Kanade with a forward-backward and patch-correlation occlusion check. OpenCV
  is an optional dependency (``pip install cotracker_fast[lk]``); :func:`lk_available` tells whether it imports.
"""
from __future__ import annotations


def lk_available() -> bool:
    """Whether OpenCV (``cv2``), which the Lucas-Kanade baseline needs, can be imported."""
    try:
        import cv2  # noqa: F401
    except ImportError:
        return False
    return True
