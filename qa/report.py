"""The static HTML QA report (``duplexloom qa sample``; the Beam job calls :func:`write_report`).

Input: shards on any Beam filesystem, a sample count and seed, optionally the job's
``summary.json`` and ``rejects.jsonl`` (found beside ``shards/`` when not given).
Output, under ``out_dir`` (any Beam filesystem):

* ``index.html`` — the dataset page: samples, hours, families, label and tool counts, violation
  codes, timing histograms, reject reasons, the run summary, and the list of sampled sessions;
* ``samples/<NNN>_<key>/index.html`` per sampled session: metadata and violations, audio players
  (``user.wav``, ``assistant.wav``, ``mix.wav`` stereo: assistant left, user right, as in the
  moshi export), the timeline
  plot(s) with a playback cursor, the chunk trace with the action channel highlighted (a click seeks
  the mix), the action list with offsets and chunks, the utterances;
* ``report.css``, ``report.js`` (no external assets: reports are read offline).

Every sample is validated (``duplexloom.qa.validate``) so the page shows what is broken; the
sample choice is seeded by ``seed`` (a stable hash, not Python's ``hash``). No reject codes.
"""

from __future__ import annotations

import hashlib
import html
import io
import json
from dataclasses import dataclass, field
from importlib import resources

import numpy as np
import soundfile as sf

from duplexloom.qa import plots
from duplexloom.qa.checks import Violation
from duplexloom.qa.stats import DatasetStats, find_histograms, reject_counts
from duplexloom.qa.trace import html_rows
from duplexloom.qa.validate import TokenizerResolver, iter_validated
from duplexloom.schemas.tokens import CONTROL_LABELS, TOOLCALL_BEGIN, TOOLCALL_END
from duplexloom.schemas.units import chunk_samples
from duplexloom.shardio import expand_shards, iter_shard_samples, parent
from duplexloom.storage import exists, join, read_bytes, write_bytes
from duplexloom.timeline.clock import ChunkGrid
from duplexloom.timeline.sample_codec import DecodedSample
from duplexloom.timeline.tokenizer import Tokenizer
from duplexloom.timeline.validate import expected_actions

E = html.escape


@dataclass
class Entry:
    """One sample as listed on the dataset page."""

    shard: str
    key: str
    family: str = "?"
    lang: str = "?"
    duration_s: float = 0.0
    chunks: int = 0
    actions: int = 0
    violations: list[Violation] = field(default_factory=list)
    page: str = ""  # relative link, set for sampled entries


def choose(n_total: int, n: int, seed: int) -> list[int]:
    """Indices of the ``n`` sampled entries, seeded by (seed, "qa_sample") through a stable hash."""
    digest = hashlib.sha256(f"{seed}\x1fqa_sample".encode()).digest()
    rng = np.random.default_rng(int.from_bytes(digest[:8], "big"))
    k = min(n, n_total)
    return sorted(int(i) for i in rng.choice(n_total, size=k, replace=False)) if k else []


def _wav(audio: np.ndarray, sr: int) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, np.clip(audio, -1.0, 1.0), sr, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def _page(title: str, body: str, *, root: str, chunk_s: float = 0.16) -> str:
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{E(title)}</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="{root}report.css">
<script src="{root}report.js"></script>
</head><body data-chunk-s="{chunk_s}">
<header><h1>{E(title)}</h1><span class="sub"><a href="{root}index.html">dataset</a> · duplexloom QA</span></header>
<main><div id="qa-errors"></div>
{body}
</main></body></html>
"""


def _highlight(text: str) -> str:
    out = E(text)
    for tok in (TOOLCALL_BEGIN, TOOLCALL_END):
        out = out.replace(E(tok), f'<span class="mk">{E(tok)}</span>')
    for tok in CONTROL_LABELS:
        out = out.replace(E(tok), f'<span class="lbl">{E(tok)}</span>')
    return out


def _table(head: list[str], rows: list[list[str]], numeric: set[int] = frozenset()) -> str:
    th = "".join(f'<th class="n">{h}</th>' if i in numeric else f"<th>{h}</th>" for i, h in enumerate(head))
    trs = "".join(
        "<tr>"
        + "".join(f'<td class="n">{c}</td>' if i in numeric else f"<td>{c}</td>" for i, c in enumerate(r))
        + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{th}</tr></thead><tbody>{trs}</tbody></table>"


def _violation_list(vs: list[Violation]) -> str:
    if not vs:
        return '<span class="badge ok">all invariants hold</span>'
    items = "".join(
        f'<li class="viol">{"chunk " + str(v.chunk) + ": " if v.chunk is not None else ""}'
        f'<b>{E(v.code)}</b> {E(v.detail)} <span class="muted">[{v.source}]</span></li>'
        for v in vs
    )
    return f'<span class="badge bad">{len(vs)} violation(s)</span><ul>{items}</ul>'


def _sample_page(s: DecodedSample, tok: Tokenizer, entry: Entry, out: str, nav: str) -> str:
    """Write one sample's page and assets under ``out``; returns the page HTML."""
    meta, tl = s.meta, s.meta.timeline
    sr = tl.sample_rate
    clen = chunk_samples(sr, meta.chunk_ms)
    chunk_s = clen / sr
    write_bytes(join(out, "user.wav"), _wav(s.user_audio, sr))
    write_bytes(join(out, "assistant.wav"), _wav(s.assistant_audio, sr))
    # assistant on channel 0 (left), user on 1: the moshi export's (and moshi-finetune's) layout
    write_bytes(join(out, "mix.wav"), _wav(np.stack([s.assistant_audio, s.user_audio], axis=1), sr))
    figs = plots.timeline_pngs(s)
    plot_html = []
    for i, p in enumerate(figs):
        write_bytes(join(out, f"timeline_{i}.png"), p.png)
        plot_html.append(
            f'<div class="plot" data-t0="{p.t0_s:.3f}" data-t1="{p.t1_s:.3f}" data-x0="{p.x0_frac:.4f}" '
            f'data-x1="{p.x1_frac:.4f}"><img src="timeline_{i}.png" alt="timeline {p.t0_s:.1f}-{p.t1_s:.1f} s">'
            f'<div class="cursor"></div></div>'
        )
    colors = plots.action_colors(s)
    bad_chunks = {v.chunk for v in entry.violations if v.chunk is not None}
    rows = html_rows(s.chunks, colors, chunk_ms=meta.chunk_ms, budget=meta.budget)
    for c in bad_chunks:
        rows = rows.replace(f'id="c{c}">', f'id="c{c}" class="bad">', 1)

    # Action list: timeline actions and the derived ASR actions, in stream order.
    first: dict[str, int] = {}
    last: dict[str, int] = {}
    text: dict[str, str] = {}
    tokens: dict[str, int] = {}
    for c in s.chunks:
        for p in c.pieces:
            first.setdefault(p.action_id, c.chunk)
            last[p.action_id] = c.chunk
            text[p.action_id] = text.get(p.action_id, "") + p.text
            tokens[p.action_id] = tokens.get(p.action_id, 0) + p.tokens
    # Derived ASR actions are not in the timeline: re-derive them (core rule) to show their triggers.
    own, derived = expected_actions(tl, ChunkGrid(sr, meta.chunk_ms), tok, meta.asr_lag_chunks)
    by_id = {a.id: a for a in (*tl.actions, *own, *(a for acts in derived.values() for a in acts))}
    derived_ids = {a.id for acts in derived.values() for a in acts}
    ids = sorted(set(first) | {a.id for a in tl.actions}, key=lambda i: (first.get(i, 10**9), i))
    arows = []
    for aid in ids:
        a = by_id.get(aid)
        color = colors.get(aid, plots.ASR_COLOR)
        offset = f"{a.offset_samples / sr:.3f}" if a else "—"
        trigger = a.offset_samples // clen if a else None
        lag = first[aid] - trigger if a and aid in first else None
        arows.append(
            [
                f'<span class="aid{" derived" if aid in derived_ids else ""}"><i style="background:{color}"></i>{E(aid)}</span>',
                E(a.name if a else "?"),
                E(a.provenance + (" (derived)" if aid in derived_ids else "") if a else "not in timeline"),
                offset,
                str(trigger) if trigger is not None else "—",
                str(first.get(aid, "never")),
                str(last.get(aid, "—")),
                str(lag) if lag is not None else "—",
                str(tokens.get(aid, 0)),
                _highlight(text.get(aid, "")),
            ]
        )
    actions_table = _table(
        [
            "action",
            "name",
            "provenance",
            "offset s",
            "trigger",
            "first",
            "last",
            "lag",
            "tokens",
            "rendered text",
        ],
        arows,
        numeric={3, 4, 5, 6, 7, 8},
    )
    urows = [
        [
            E(u.id),
            f'<b style="color:{plots.USER_COLOR if u.speaker == "user" else plots.ASSISTANT_COLOR}">{u.speaker}</b>',
            E(u.kind),
            f"{u.audio_start_samples / sr:.3f}",
            f"{u.audio_end_samples / sr:.3f}",
            f"{u.cut_samples / sr:.3f}" if u.cut_samples is not None else "",
            str(len(u.words)),
            E(u.text),
        ]
        for u in sorted(tl.utterances, key=lambda u: u.audio_start_samples)
    ]
    utt_table = _table(
        ["id", "speaker", "kind", "start s", "end s", "cut s", "words", "text"], urows, {3, 4, 5, 6}
    )
    aug = ""
    if tl.augmentation:
        aug_rows = [
            [E(p.name), E(json.dumps(p.value, ensure_ascii=False)), E(p.distribution), E(p.target or "")]
            for p in tl.augmentation
        ]
        aug = f"<section><h2>Augmentation draws</h2>{_table(['parameter', 'value', 'distribution', 'target'], aug_rows)}</section>"
    spk = meta.speakers
    speakers = ", ".join(f"{role}: {E(sp.display_name)} ({E(sp.id)})" for role, sp in sorted(spk.items()))
    legend = "".join(
        f'<span><i style="background:{c}"></i>{E(n)}</span>'
        for n, c in (
            ("user", plots.USER_COLOR),
            ("assistant", plots.ASSISTANT_COLOR),
            *plots.LABEL_COLORS.items(),
            ("tool call", plots.TOOL_COLOR),
            ("think", plots.THINK_COLOR),
            ("asr", plots.ASR_COLOR),
        )
    )
    players = "".join(
        f'<div class="player {cls}"><label>{label}</label>'
        f'<audio controls preload="auto" src="{src}" class="{cls}" data-channels="{ch}"></audio>'
        f'<span class="state">loading…</span></div>'
        for label, src, cls, ch in (
            ("user track", "user.wav", "user", 1),
            ("assistant track", "assistant.wav", "assistant", 1),
            ("stereo mix (L assistant, R user)", "mix.wav", "mix", 2),
        )
    )
    body = f"""
{nav}
<section><h2>Session</h2>
<dl class="meta">
<dt>key</dt><dd><b>{E(s.key)}</b> <span class="muted">in {E(entry.shard)}</span></dd>
<dt>family / lang</dt><dd>{E(meta.family)} / {E(meta.lang)}</dd>
<dt>duration</dt><dd>{len(s.user_audio) / sr:.2f} s of audio ({tl.duration_samples / sr:.2f} s session, then drain chunks) · {len(s.chunks)} chunks of {meta.chunk_ms} ms · budget {meta.budget} tokens · ASR lag {meta.asr_lag_chunks} chunks</dd>
<dt>speakers</dt><dd>{speakers}</dd>
<dt>tokenizer</dt><dd>{E(meta.tokenizer.name)} ({E(meta.tokenizer.kind)})</dd>
<dt>seed</dt><dd>{E(meta.seed_id)} · run seed {meta.run_seed}</dd>
<dt>system prompt</dt><dd>{E(meta.system_prompt) or '<span class="muted">(empty)</span>'}</dd>
<dt>validation</dt><dd>{_violation_list(entry.violations)}</dd>
</dl></section>
<section><h2>Audio</h2><div class="players">{players}</div></section>
<section><h2>Timeline</h2><div class="legend">{legend}</div>{"".join(plot_html)}
<p class="muted">Dashed lines: label / tool call / think triggers. Rows: waveforms with aligned words, the TA4 anchor T per chunk (pale red: &lt;tts_pad&gt;), the action channel pieces per chunk. Play the mix to move the cursor.</p></section>
<section><h2>Chunk trace <span class="muted">(SPEC §15; action channel highlighted; click a row to play from it)</span></h2>
<div class="trace-wrap"><table class="trace"><thead><tr><th class="n">chunk</th><th class="n">t s</th><th>action channel</th><th class="n">tokens</th><th>audio channels (U = user words heard, T = anchor)</th></tr></thead>
<tbody>{rows}</tbody></table></div></section>
<section><h2>Actions <span class="muted">(stream order; lag = first chunk − trigger chunk)</span></h2>{actions_table}</section>
<section><h2>Utterances</h2>{utt_table}</section>
{aug}
<section><details><summary>sample JSON</summary><pre class="json">{E(json.dumps(meta.model_dump(mode="json"), indent=1, ensure_ascii=False))}</pre></details></section>
"""
    return _page(f"{s.key} · {meta.family}", body, root="../../", chunk_s=chunk_s)


def _broken_page(entry: Entry, nav: str) -> str:
    body = f"{nav}<section><h2>Session {E(entry.key)}</h2><p>This sample does not decode.</p>{_violation_list(entry.violations)}</section>"
    return _page(f"{entry.key} · broken", body, root="../../")


def _locate(paths: list[str], name: str, given: str | None) -> str | None:
    """``given``, else ``name`` beside ``shards/`` (the job layout) or beside the shards."""
    if given:
        return given
    folder = parent(paths[0])
    for base in (parent(folder), folder) if folder.rstrip("/").endswith("shards") else (folder,):
        candidate = join(base, name)
        if exists(candidate):
            return candidate
    return None


def _dataset_page(
    out_dir: str,
    paths: list[str],
    entries: list[Entry],
    stats: DatasetStats,
    summary_path: str | None,
    rejects_path: str | None,
    n: int,
    seed: int,
) -> str:
    imgs: list[str] = []

    def img(name: str, png: bytes | None) -> None:
        if png:
            write_bytes(join(out_dir, "assets", name), png)
            imgs.append(f'<img src="assets/{name}" alt="{E(name)}">')

    img("labels.png", plots.bars_png("actions by kind", dict(stats.labels)))
    img("tools.png", plots.bars_png("tool calls by function", dict(stats.tools)))
    img(
        "families.png",
        plots.bars_png(
            "hours by family", {k: v / 3600 for k, v in stats.seconds_by_family.items()}, "#1f6fb4"
        ),
    )
    for name, hist in stats.histograms().items():
        img(f"hist_{name}.png", plots.histogram_png(name, hist))
    n_viol = sum(stats.violations.values())
    cards = [
        ("samples", f"{stats.samples + stats.undecodable}", ""),
        ("hours", f"{stats.hours:.3f}", ""),
        ("shards", str(len(paths)), ""),
        ("samples with violations", str(stats.bad_samples), "bad" if stats.bad_samples else "ok"),
        ("violations", str(n_viol), "bad" if n_viol else "ok"),
    ]
    rej_html = '<p class="muted">no rejects file found</p>'
    if rejects_path:
        counts, example = reject_counts(read_bytes(rejects_path).decode("utf-8").splitlines())
        cards.append(("rejects", str(sum(counts.values())), ""))
        rows = [[E(st), E(code), str(c), E(example[(st, code)])] for (st, code), c in counts.most_common()]
        rej_html = f'<p class="muted">{E(rejects_path)}</p>' + _table(
            ["stage", "code", "count", "example"], rows, {2}
        )
    summary_html = '<p class="muted">no run summary found</p>'
    if summary_path:
        summary = json.loads(read_bytes(summary_path))
        for name, hist in find_histograms(summary).items():
            img(
                f"summary_{name.replace('/', '_')}.png",
                plots.histogram_png(f"summary: {name}", hist, "#138a8a"),
            )
        summary_html = (
            f'<p class="muted">{E(summary_path)}</p><details><summary>summary.json</summary>'
            f'<pre class="json">{E(json.dumps(summary, indent=1, ensure_ascii=False))}</pre></details>'
        )
    fam_rows = [
        [
            E(f),
            str(stats.samples_by_family[f]),
            f"{stats.seconds_by_family[f] / 3600:.4f}",
            f"{stats.seconds_by_family[f]:.1f}",
        ]
        for f in sorted(stats.samples_by_family)
    ]
    viol_rows = [[E(code), str(c)] for code, c in stats.violations.most_common()]
    sample_rows = [
        [
            f'<a href="{e.page}">{E(e.key)}</a>' if e.page else E(e.key),
            E(e.family),
            E(e.lang),
            f"{e.duration_s:.2f}",
            str(e.chunks),
            str(e.actions),
            f'<span class="badge bad">{len(e.violations)}</span>'
            if e.violations
            else '<span class="badge ok">ok</span>',
            E(parent(e.shard).rsplit("/", 1)[-1] + "/" + e.shard.rsplit("/", 1)[-1]),
        ]
        for e in entries
        if e.page
    ]
    card_html = "".join(
        f'<div class="card {cls}"><div class="v">{v}</div><div class="k">{k}</div></div>'
        for k, v, cls in cards
    )
    body = f"""
<section><div class="cards">{card_html}</div>
<p class="muted">shards: {E(", ".join(paths[:4]))}{" …" if len(paths) > 4 else ""} · {len(sample_rows)} sampled of {len(entries)} (n={n}, seed={seed})</p></section>
<section><h2>Sampled sessions</h2>{_table(["key", "family", "lang", "duration s", "chunks", "actions", "validation", "shard"], sample_rows, {3, 4, 5})}</section>
<section><h2>Families</h2>{_table(["family", "samples", "hours", "seconds"], fam_rows, {1, 2, 3})}</section>
<section><h2>Violations by code <span class="muted">(every sample validated)</span></h2>{_table(["code", "count"], viol_rows, {1}) if viol_rows else '<span class="badge ok">none</span>'}</section>
<section><h2>Labels, tools, timing</h2><div class="grid">{"".join(imgs)}</div></section>
<section><h2>Reject reasons</h2>{rej_html}</section>
<section><h2>Run summary</h2>{summary_html}</section>
"""
    return _page("duplexloom QA report", body, root="")


def write_report(
    shards: str,
    out_dir: str,
    n: int = 20,
    seed: int = 0,
    summary_path: str | None = None,
    rejects_path: str | None = None,
    tokenizer_path: str | None = None,
) -> str:
    """Write the report (see the module docstring); returns the path of ``index.html``."""
    paths = expand_shards(shards)
    stats = DatasetStats()
    entries: list[Entry] = []
    for raw, decoded, found in iter_validated(iter_shard_samples(paths), tokenizer_path):
        stats.add(decoded, found)
        e = Entry(raw.shard, raw.key, violations=found)
        if decoded is not None:
            tl = decoded.meta.timeline
            e.family, e.lang = decoded.meta.family, decoded.meta.lang
            e.duration_s = len(decoded.user_audio) / tl.sample_rate  # the audio, drain chunks included
            e.chunks, e.actions = len(decoded.chunks), len(tl.actions)
        entries.append(e)
    chosen = [entries[i] for i in choose(len(entries), n, seed)]
    for i, e in enumerate(chosen):
        e.page = f"samples/{i:03d}_{e.key}/index.html"
    wanted = {(e.shard, e.key): e for e in chosen}
    # Second pass: only the shards holding sampled sessions, so audio is never all in memory.
    shard_set = sorted({e.shard for e in chosen})
    resolver = TokenizerResolver(tokenizer_path)
    for raw, decoded, _found in iter_validated(
        (r for r in iter_shard_samples(shard_set) if (r.shard, r.key) in wanted), tokenizer_path
    ):
        e = wanted[(raw.shard, raw.key)]
        k = chosen.index(e)
        prev_link = (
            f'<a href="../../{chosen[k - 1].page}">← {E(chosen[k - 1].key)}</a>' if k else "<span></span>"
        )
        next_link = (
            f'<a href="../../{chosen[k + 1].page}">{E(chosen[k + 1].key)} →</a>'
            if k + 1 < len(chosen)
            else "<span></span>"
        )
        nav = f'<nav class="pager">{prev_link}<span>sample {k + 1} of {len(chosen)}</span>{next_link}</nav>'
        folder = join(out_dir, parent(e.page))
        page = (
            _sample_page(decoded, resolver.for_sample(decoded), e, folder, nav)
            if decoded is not None
            else _broken_page(e, nav)
        )
        write_bytes(join(out_dir, e.page), page.encode("utf-8"))
    for name in ("report.css", "report.js"):
        write_bytes(
            join(out_dir, name), resources.files("duplexloom.qa").joinpath("static", name).read_bytes()
        )
    summary = _locate(paths, "summary.json", summary_path)
    rejects = _locate(paths, "rejects.jsonl", rejects_path)
    index = join(out_dir, "index.html")
    write_bytes(
        index, _dataset_page(out_dir, paths, entries, stats, summary, rejects, n, seed).encode("utf-8")
    )
    return index
