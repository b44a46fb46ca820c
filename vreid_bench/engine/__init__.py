"""The training and evaluation harness: one loop for every model, run directories, DDP."""

from vreid_bench.engine.config import RunOptions
from vreid_bench.engine.features import Features, extract_features
from vreid_bench.engine.rundir import DatasetRecord, RunRecord, read_run_config, run_dir_for
from vreid_bench.engine.train import RunResult, eval_run, run_training

__all__ = [
    "DatasetRecord", "Features", "RunOptions", "RunRecord", "RunResult", "eval_run", "extract_features",
    "read_run_config", "run_dir_for", "run_training",
]
