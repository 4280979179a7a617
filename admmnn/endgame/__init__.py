"""The endgame: semismooth Newton on the augmented Lagrangian, run from an ADMM iterate
(``ssnal``), its reduced Newton systems (``system``) and when to run it (``schedule``)."""
from .system import DenseNewton, WoodburyNewton, available, choose, first_try, system_for
from .ssnal import Candidate, EndgameResult, SSNALState, run, start_state

__all__ = ["DenseNewton", "WoodburyNewton", "available", "choose", "first_try", "system_for", "Candidate", "EndgameResult", "SSNALState", "run", "start_state"]
