"""The GDPR Art. 30 record of processing, generated from the configuration (md, html, json).

Everything in it is derived from ``mesure.toml`` and from what Mesure does by construction;
the CNIL exemption findings come from :func:`consent.cnil.check`.
"""

from __future__ import annotations

import html
from typing import Literal

import msgspec

import consent.cnil as cnil
from collector.config import Config, SiteConfig
from collector.privacy.instance import Residency, residency
from consent.site_policy import MAX_EXEMPT_RETENTION_DAYS

RegisterFormat = Literal["md", "html", "json"]
REGISTER_FORMATS: tuple[RegisterFormat, ...] = ("md", "html", "json")

SECURITY_MEASURES = [
    "Identifiers are pseudonymized in memory with keyed hashes (HMAC-SHA-256, 16 bytes) under "
    "per-site keys; raw client ids, user ids and IP addresses are never stored.",
    "Cookieless visitors are hashed under random daily keys destroyed within 48 hours.",
    "Keys are rotated on demand; retired epochs are kept only until destroyed (crypto-shredding).",
    "Key files are readable by their owner only (0600); start-up refuses anything wider.",
    "Every privacy-relevant action is recorded in a hash-chained audit log.",
    "Exports are signed with the instance's Ed25519 key and list the SHA-256 of every file.",
    "Every URL is stored cleaned, whatever the consent: no fragment, no query but campaign "
    "parameters (with consent), e-mail addresses and long digit runs masked.",
    "Erasure and retention overwrite the deleted rows and leave no copy in the write-ahead log, "
    "the report rollups or the exports kept on the server, which expire after "
    "exports-keep-days.",
    "No outbound network connection; geolocation only from a local database file.",
]


class ModeProcessing(msgspec.Struct, frozen=True, kw_only=True):
    mode: str
    purpose: str
    legal_basis: str
    data: str
    retention_days: int | None


class SiteRecord(msgspec.Struct, frozen=True, kw_only=True):
    site: str
    hostnames: list[str]
    privacy_policy_url: str | None
    processing: list[ModeProcessing]
    cnil_findings: list[cnil.Finding]


class Register(msgspec.Struct, frozen=True, kw_only=True):
    controller: str
    data_subjects: str
    recipients: str
    transfers: str
    residency: Residency
    security_measures: list[str]
    sites: list[SiteRecord]


def build_register(config: Config) -> Register:
    where = residency(config)
    located = where.host_location or "location not declared in mesure.toml"
    transfers = (
        f"None: data stays on this host ({located}; residency "
        f"{where.residency or 'not declared'}); Mesure opens no outbound connection"
    )
    if config.clickhouse is not None and not config.clickhouse.embedded:
        transfers = (
            f"None outside the owner's hosts: this host ({located}) and the owner's ClickHouse "
            f"storage ({config.storage_location or 'location not declared in mesure.toml'}); "
            f"residency {where.residency or 'not declared'}"
        )
    return Register(
        controller="The owner of this Mesure instance (the operator of the sites below)",
        data_subjects="Visitors of the sites listed below; users of a site when it sends its "
        "own user id (granted hits only)",
        recipients="None: the data is processed only by this instance, for its owner",
        transfers=transfers,
        residency=where,
        security_measures=SECURITY_MEASURES,
        sites=[_site(site) for site in config.sites],
    )


def _site(site: SiteConfig) -> SiteRecord:
    policy = site.consent
    exempt_days = min(policy.retention_exempt_days, MAX_EXEMPT_RETENTION_DAYS)
    modes = [
        ModeProcessing(
            mode="optout",
            purpose="Honour the visitor's objection",
            legal_basis="Legal obligation (right to object); nothing about the visitor is kept",
            data="A daily per-site counter of opt-out hits, no row and no identifier",
            retention_days=None,
        ),
        ModeProcessing(
            mode="denied",
            purpose="Count pageviews and events without identifying anyone",
            legal_basis="Legitimate interest (aggregate counts without any identifier)",
            data="Event name, page path, country at most",
            retention_days=exempt_days,
        ),
    ]
    if policy.exemption:
        modes.append(
            ModeProcessing(
                mode="exempt",
                purpose="Audience measurement strictly necessary to the site (CNIL exemption)",
                legal_basis="Exempt from consent under the CNIL audience-measurement exemption "
                "(délibération 2020-091); legitimate interest",
                data="Keyed hash of a first-party id or a daily cookieless hash; page, referrer "
                "source, browser/OS/device class, country, engagement time (no user id, "
                "campaign, revenue or free properties)",
                retention_days=exempt_days,
            )
        )
    modes.append(
        ModeProcessing(
            mode="granted",
            purpose="Web analytics the visitor consented to",
            legal_basis="Consent (GDPR Art. 6(1)(a); ePrivacy Art. 5(3))",
            data="Keyed hashes of the client id and of the site's user id; page, referrer, "
            "campaign, device, country, custom properties, revenue",
            retention_days=policy.retention_granted_days,
        )
    )
    return SiteRecord(
        site=site.id,
        hostnames=list(site.hostnames),
        privacy_policy_url=policy.privacy_policy_url,
        processing=modes,
        cnil_findings=cnil.check(policy),
    )


def render(register: Register, fmt: RegisterFormat) -> str:
    if fmt == "json":
        return msgspec.json.format(msgspec.json.encode(register), indent=2).decode() + "\n"
    markdown = _markdown(register)
    if fmt == "md":
        return markdown
    return _html(register)


def _days(days: int | None) -> str:
    return "not kept" if days is None else f"{days} days"


def _markdown(register: Register) -> str:
    lines = [
        "# Record of processing activities (GDPR Art. 30)",
        "",
        f"- **Controller:** {register.controller}",
        f"- **Data subjects:** {register.data_subjects}",
        f"- **Recipients:** {register.recipients}",
        f"- **Transfers:** {register.transfers}",
        f"- **Residency:** {register.residency.residency or 'not declared'}; host location: "
        f"{register.residency.host_location or 'not declared'}; outbound connections: "
        f"{register.residency.outbound_connections}",
        "",
        "## Security measures",
        "",
        *[f"- {measure}" for measure in register.security_measures],
    ]
    for site in register.sites:
        lines += [
            "",
            f"## Site {site.site}",
            "",
            f"Hostnames: {', '.join(site.hostnames)}. Privacy policy: "
            f"{site.privacy_policy_url or 'not configured'}.",
            "",
            "| mode | purpose | legal basis | data | retention |",
            "|---|---|---|---|---|",
            *[
                f"| {m.mode} | {m.purpose} | {m.legal_basis} | {m.data} | "
                f"{_days(m.retention_days)} |"
                for m in site.processing
            ],
            "",
            "### CNIL exemption conformance",
            "",
            "| status | check | key | finding |",
            "|---|---|---|---|",
            *[
                f"| {f.status.upper()} | {f.code} | {f.key} | {f.explanation} |"
                for f in site.cnil_findings
            ],
        ]
    return "\n".join(lines) + "\n"


def _html(register: Register) -> str:
    e = html.escape
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        "<title>Record of processing activities</title></head><body>",
        "<h1>Record of processing activities (GDPR Art. 30)</h1><dl>",
    ]
    for label, value in (
        ("Controller", register.controller),
        ("Data subjects", register.data_subjects),
        ("Recipients", register.recipients),
        ("Transfers", register.transfers),
        ("Residency", register.residency.residency or "not declared"),
        ("Host location", register.residency.host_location or "not declared"),
    ):
        parts.append(f"<dt>{e(label)}</dt><dd>{e(value)}</dd>")
    parts.append("</dl><h2>Security measures</h2><ul>")
    parts += [f"<li>{e(measure)}</li>" for measure in register.security_measures]
    parts.append("</ul>")
    for site in register.sites:
        parts.append(f"<h2>Site {e(site.site)}</h2><table><tr><th>mode</th><th>purpose</th>")
        parts.append("<th>legal basis</th><th>data</th><th>retention</th></tr>")
        for m in site.processing:
            cells: tuple[str, ...] = (
                m.mode,
                m.purpose,
                m.legal_basis,
                m.data,
                _days(m.retention_days),
            )
            parts.append("<tr>" + "".join(f"<td>{e(c)}</td>" for c in cells) + "</tr>")
        parts.append("</table><h3>CNIL exemption conformance</h3><table>")
        for f in site.cnil_findings:
            cells = (f.status.upper(), f.code, f.key, f.explanation)
            parts.append("<tr>" + "".join(f"<td>{e(c)}</td>" for c in cells) + "</tr>")
        parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
