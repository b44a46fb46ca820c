import subprocess
import sys

from vreid_bench import __version__
from vreid_bench.cli import main


def test_version(capsys):
    assert main(["--version"]) == 0
    assert __version__ in capsys.readouterr().out


def test_datasets_lists_the_registry(capsys):
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    for name in ("mars", "ilidsvid", "prid2011", "dukemtmcvidreid", "lsvid", "sportsvreid", "dancevreid"):
        assert name in out


def test_user_error_is_one_line_and_exit_2(tmp_path, capsys):
    assert main(["info", "nosuchdataset"]) == 2
    err = capsys.readouterr().err.strip()
    assert "unknown dataset 'nosuchdataset'" in err and "Traceback" not in err


def test_unbuilt_sports_dataset_says_how_to_build_it(tmp_path, capsys):
    assert main(["info", "sports", "--root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "vreid build sports" in err


def test_folder_that_is_not_a_dataset(tmp_path, capsys):
    assert main(["info", str(tmp_path)]) == 2
    assert "no manifest.json" in capsys.readouterr().err


def test_debug_shows_the_traceback(tmp_path):
    result = subprocess.run([sys.executable, "-m", "vreid_bench.cli", "--debug", "info", "nosuchdataset"],
                            capture_output=True, text=True)
    assert result.returncode != 0 and "Traceback" in result.stderr


def test_an_option_the_loader_does_not_take_is_named(tmp_path, capsys):
    from layouts import write_mars

    write_mars(tmp_path)
    assert main(["info", "mars", "--root", str(tmp_path), "--split", "3"]) == 2
    assert "unknown option 'split'" in capsys.readouterr().err
