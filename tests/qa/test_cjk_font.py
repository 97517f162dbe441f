"""Chinese words, label phrases and tool planning in the report plots must not draw as boxes."""

import warnings

import matplotlib.pyplot as plt

import duplexloom.qa.plots  # noqa: F401  (sets the font fallback)


def test_cjk_text_renders_without_missing_glyphs():
    fig, ax = plt.subplots(figsize=(3, 1))
    ax.text(0.05, 0.5, "检测到用户插话 turn on the AC")
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*missing from font.*")
        fig.savefig(__import__("io").BytesIO(), format="png")
    plt.close(fig)
