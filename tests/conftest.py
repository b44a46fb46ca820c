"""Settings every test runs under: no network, and one torch thread.

The test models are tiny; on a 2-core machine, synchronising torch's threads costs more than the work.
"""

import os

os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pytest  # noqa: E402
import torch  # noqa: E402


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def cli_with(monkeypatch):
    """The real ``vreid`` entry point (``cli.main``) with only the given command modules registered."""
    import typer

    from vreid_bench import cli

    def make(*modules):
        app = typer.Typer(pretty_exceptions_enable=False)
        app.callback()(lambda: None)
        for module in modules:
            module.register(app)
        monkeypatch.setattr(cli, "app", app)
        monkeypatch.setattr(cli, "_register_all", lambda: None)
        return app

    return make
