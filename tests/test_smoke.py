from pathlib import Path

import numpy as np

from vcam.matting import MattingEngine


def test_engine_alpha_shape_and_range(model_path: Path) -> None:
    eng = MattingEngine(model_path, providers=("cpu",), input_size=(256, 144), downsample_ratio=0.5)
    rgb = np.full((360, 640, 3), 120, np.uint8)
    alpha = eng.infer(rgb)
    assert alpha.shape == (144, 256)
    assert alpha.dtype == np.float32
    assert float(alpha.min()) >= 0.0 and float(alpha.max()) <= 1.0
