"""admmnn: two-layer ReLU networks trained to their global optimum by ADMM on
their convex reformulation."""
from ._version import __version__
from .estimators import ConvexReLUClassifier, ConvexReLURegressor
from .network import ReLUNetwork
from .patterns import conv_patterns, gaussian_patterns
from .result import SolveResult, Status
from .solve import solve
from .io import load, save

__all__ = [
    "solve",
    "ConvexReLUClassifier",
    "ConvexReLURegressor", "gaussian_patterns", "conv_patterns", "ReLUNetwork", "SolveResult", "Status", "save", "load",
    "__version__"]
