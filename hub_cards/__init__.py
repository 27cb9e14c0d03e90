"""Card and page templates (dataset card, eval.yaml, model card snippet, leaderboard page) and their renderers."""

from __future__ import annotations

from pathlib import Path

TEMPLATES = Path(__file__).parent


def render_dataset_card(card_data: dict, context: dict) -> str:
    """The dataset card README.md: YAML front matter from ``card_data`` (configs, dataset_info, ...) plus the
    body rendered from ``dataset_card.md`` with ``context`` (counts, fingerprints, edition, ...)."""
    from huggingface_hub import DatasetCard, DatasetCardData

    card = DatasetCard.from_template(
        DatasetCardData(**card_data), template_path=str(TEMPLATES / "dataset_card.md"), **context
    )
    return str(card)
