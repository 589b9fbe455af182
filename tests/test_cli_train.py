"""``hmrkit train MODEL ...`` hands every option to the trainer's own command line."""

import pytest

from hmrkit.cli import main


@pytest.mark.parametrize("model, prog", [("hkmr", "hmrkit.train.hkmr"), ("hand-ik", "hand_ik"), ("pose-prior", "pose_prior")])
def test_train_help_comes_from_the_trainer(model, prog, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", model, "--help"])
    assert exit_info.value.code == 0
    assert prog in capsys.readouterr().out


def test_unknown_options_stay_errors_outside_train(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "x.jpg", "--no-such-option"])
    assert exit_info.value.code == 2
    assert "--no-such-option" in capsys.readouterr().err
