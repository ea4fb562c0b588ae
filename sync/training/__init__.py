"""Training: sessions and their attendance (their rules for the engine), the
coordinators' lists and the attendance report."""

from sync.training import attendance_report  # the programme's figures, for the bundle

__all__ = ["attendance_report"]
