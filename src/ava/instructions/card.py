"""The dataset card (``OUT/README.md``) of a build, with the Hugging Face Hub's YAML header.

The header names the splits and their files (``configs``), the column types (``dataset_info``)
and the licence, so ``datasets.load_dataset(OUT)`` and the Hub read the folder as it is meant to
be read; the body restates the manifest's counts for a person. Everything comes from the
manifest, so the card is as deterministic as the build (byte-identical for identical inputs).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from huggingface_hub import DatasetCard, DatasetCardData

from ava.contracts.instructions import SPLITS
from ava.instructions.dataset import SCHEMA, DatasetLayout
from ava.io import atomic_write

LICENCE = {
    "license": "other",
    "license_name": "ad-library-content",
    "license_details": "Derived from the input ad-library records (public Meta Ad Library content): the rows "
    "quote ad texts and inherit the terms of the records they were built from. The code that built them "
    "(align-via-actions) is MIT.",
}


def _features() -> list[dict[str, Any]]:
    """Column types in the Hub's YAML form (``list: string`` for ``ad_ids``), from the Parquet schema."""
    import datasets

    return datasets.Features.from_arrow_schema(SCHEMA)._to_yaml_list()


def card_text(manifest: dict[str, Any]) -> str:
    splits = [{"name": s, "num_bytes": manifest["arrow_bytes"][s], "num_examples": manifest["totals"][s]}
              for s in SPLITS]
    data = DatasetCardData(
        **LICENCE,
        pretty_name="AVA behaviour instructions",
        task_categories=["text-generation"],
        tags=["advertising", "behaviour", "alignment", "ava"],
        configs=[{"config_name": "default", "default": True,
                  # a split without rows has no files (dataset.compact_parts): listing it would not load
                  "data_files": [{"split": s, "path": DatasetLayout.parts_pattern(s)} for s in SPLITS
                                 if manifest["totals"][s]]}],
        dataset_info={"features": _features(), "splits": splits,
                      "dataset_size": sum(manifest["arrow_bytes"].values())},
    )
    rows = "\n".join(
        f"| {s} | {manifest['advertisers'][s]:,} | {manifest['ads'][s]:,} | {manifest['totals'][s]:,} |" for s in SPLITS
    )
    tasks = "\n".join(
        f"| {t} | " + " | ".join(f"{manifest['counts'][s][t]:,}" for s in SPLITS) + " |"
        for t in manifest["counts"][SPLITS[0]]
    )
    inputs = ", ".join(f"`{i['name']}`" for i in manifest["inputs"])
    body = f"""
# AVA behaviour instructions

Instruction pairs built by `ava build` (align-via-actions) from ad-library records: target
audience prediction (TAP), targeted ad generation (TAG), transsuasion (TS) and transcreation
(TC), 18 subtasks in all.

* template version {manifest['template_version']}, seed {manifest['seed']}, temporal cut-off {manifest['cutoff']}
* inputs: {inputs}
* every count and setting: `manifest.json`; skipped input records: `skipped.json`

```python
import datasets
ds = datasets.load_dataset("path/to/this/folder")   # splits: {', '.join(SPLITS)}
```

No advertiser and no pair crosses splits: `test_advertiser` holds held-out advertisers,
`test_temporal` the advertisers first seen after the cut-off.

| split | advertisers | ads | samples |
|---|---|---|---|
{rows}

| subtask | {' | '.join(SPLITS)} |
|---|---|---|---|
{tasks}

## Licence

{LICENCE['license_details']}
"""
    return DatasetCard(f"---\n{data.to_yaml()}\n---\n{body}").content


def write_card(out_dir: str | Path, manifest: dict[str, Any]) -> Path:
    path = DatasetLayout(Path(out_dir)).card
    with atomic_write(path) as fh:
        fh.write(card_text(manifest))
    return path
