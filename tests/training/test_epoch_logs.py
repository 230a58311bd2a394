"""Per-epoch logs on resume: rows before the start epoch kept byte for byte, later ones dropped."""

from fluxbridge.training.epoch_logs import AppendingCSVLogger, keep_epochs_before

LOG = "step,epoch,loss\r\n0,0,1.5\r\n1,0,1.25\r\n2,1,1.0\r\n3,2,0.5\r\n"


def test_keeps_the_epochs_before_the_start(tmp_path):
    path = tmp_path / "metrics.csv"
    path.write_bytes(LOG.encode())
    keep_epochs_before(path, 1)
    assert path.read_bytes() == b"step,epoch,loss\r\n0,0,1.5\r\n1,0,1.25\r\n"


def test_drops_a_row_cut_by_a_kill(tmp_path):
    path = tmp_path / "metrics.csv"
    path.write_bytes((LOG + "4,2,0.2").encode())  # no newline: the write was killed
    keep_epochs_before(path, 3)
    assert path.read_bytes() == LOG.encode()


def test_a_fresh_fit_keeps_nothing(tmp_path):
    path = tmp_path / "metrics.csv"
    path.write_bytes(LOG.encode())
    keep_epochs_before(path, 0)
    assert not path.exists()
    keep_epochs_before(path, 2)  # nothing to trim
    assert not path.exists()


def test_logger_appends_to_an_existing_metrics_file(tmp_path):
    path = tmp_path / "fold_0" / "metrics.csv"
    path.parent.mkdir()
    path.write_bytes(b"epoch,loss,step\r\n0,1.5,9\r\n")
    logger = AppendingCSVLogger(save_dir=tmp_path, name="fold_0", version="")
    logger.log_metrics({"epoch": 1, "loss": 1.0}, step=19)
    logger.save()
    assert path.read_bytes() == b"epoch,loss,step\r\n0,1.5,9\r\n1,1.0,19\r\n"
