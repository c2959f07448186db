"""Scraping a real /metrics endpoint and reading samples out of the Prometheus text format."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import aiohttp
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample


@dataclass(frozen=True, slots=True)
class Scrape:
    """One answer of a /metrics endpoint: its status, and its samples when it was 200."""

    status: int
    samples: tuple[Sample, ...]

    def value(self, name: str, **labels: str) -> float | None:
        """The value of the one sample ``name`` whose labels include ``labels``; None if none."""
        found = [s.value for s in self.samples
                 if s.name == name and labels.items() <= s.labels.items()]  # fmt: skip
        assert len(found) <= 1, f"{name}{labels} matches {len(found)} samples"
        return found[0] if found else None

    def total(self, name: str, **labels: str) -> float:
        """The sum of every sample ``name`` whose labels include ``labels`` (0 if none)."""
        return sum(s.value for s in self.samples
                   if s.name == name and labels.items() <= s.labels.items())  # fmt: skip

    def labelled(self, name: str, label: str) -> Mapping[str, float]:
        """``{label value: value}`` of every sample ``name``."""
        return {s.labels[label]: s.value for s in self.samples if s.name == name}


async def scrape(url: str, token: str | None = None) -> Scrape:
    """GET ``url`` (a /metrics URL) and parse it with prometheus-client's own parser."""
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as answer:
        text = await answer.text()
        if answer.status != 200:
            return Scrape(answer.status, ())
        samples = tuple(sample for family in text_string_to_metric_families(text)
                        for sample in family.samples)  # fmt: skip
        return Scrape(200, samples)
