"""Words and numbers of the report in Norwegian (``nb``) and English (``en``).

Every label a reader sees in the interactive part of the report and in the section
headings comes from :data:`STRINGS`, so the two languages stay side by side and a test
can check that none is missing. Numbers follow the language: Norwegian groups thousands
with a (non-breaking thin) space and uses a decimal comma; English uses a comma and a
decimal point, so a page never mixes the two conventions.
"""

from __future__ import annotations

import enum
import math
from typing import Any

__all__ = [
    "COMPONENT_NAMES",
    "STRINGS",
    "Lang",
    "fmt_int",
    "fmt_number",
    "fmt_signed",
    "t",
    "tr",
    "translate_figure",
]


class Lang(enum.StrEnum):
    """Language of the report."""

    nb = "nb"
    en = "en"


#: Label key -> {language: text}. ``{...}`` fields are filled with ``str.format``.
STRINGS: dict[str, dict[str, str]] = {
    "title": {
        "en": "Population forecast and drivers of growth",
        "nb": "Befolkningsframskriving og drivkrefter for vekst",
    },
    "subtitle": {
        "en": "Projection from 1 January {base} to {end} with uncertainty bands, for every "
        "municipality, county and region.",
        "nb": "Framskriving fra 1. januar {base} til {end} med usikkerhetsintervaller, for "
        "alle kommuner, fylker og regioner.",
    },
    "explorer": {"en": "Your municipality", "nb": "Din kommune"},
    "pick": {
        "en": "Choose a municipality, county or region",
        "nb": "Velg kommune, fylke eller region",
    },
    "group_nation": {"en": "Country", "nb": "Landet"},
    "group_municipality": {"en": "Municipalities", "nb": "Kommuner"},
    "group_county": {"en": "Counties", "nb": "Fylker"},
    "group_region": {
        "en": "Labour-market regions",
        "nb": "Bo- og arbeidsmarkedsregioner",
    },
    "key_now": {"en": "Population 1 January {base}", "nb": "Folketall 1. januar {base}"},
    "key_end": {
        "en": "Expected population {end} (median)",
        "nb": "Forventet folketall {end} (median)",
    },
    "key_band": {
        "en": "80 % band for {end}",
        "nb": "80 %-intervall for {end}",
    },
    "key_growth": {
        "en": "Chance of growth by {end}",
        "nb": "Sannsynlighet for vekst til {end}",
    },
    "fan_title": {"en": "Population on 1 January", "nb": "Folketall 1. januar"},
    "observed": {"en": "Observed", "nb": "Observert"},
    "median": {"en": "Median projection", "nb": "Median framskriving"},
    "band": {"en": "{p} % band", "nb": "{p} %-intervall"},
    "official": {
        "en": "Statistics Norway's projection ({alt}, {vintage})",
        "nb": "SSBs framskriving ({alt}, {vintage})",
    },
    "fan_caption": {
        "en": "The black line is the observed population, the blue line the median of the "
        "simulated futures. The bands hold the middle 50 %, 80 % and 95 % of them. {coverage}",
        "nb": "Den svarte linjen er observert folketall, den blå medianen av de simulerte "
        "framtidene. Båndene rommer de midterste 50 %, 80 % og 95 % av dem. {coverage}",
    },
    "coverage_source_all": {
        "en": "In backtests on past years",
        "nb": "I tilbaketester på tidligere år",
    },
    "coverage_source_like": {
        "en": "In backtests from the forecast origins {origins} (made as this forecast was)",
        "nb": "I tilbaketester fra startårene {origins} (laget slik denne framskrivingen er "
        "laget)",
    },
    "coverage_measured": {
        "en": "{source}, the real population fell inside the 80 % band "
        "{measured} of the time {horizon} years ahead (it should be 80 %).",
        "nb": "{source} lå det faktiske folketallet innenfor "
        "80 %-intervallet i {measured} av tilfellene {horizon} år fram (det burde vært 80 %).",
    },
    "coverage_measured_class": {
        "en": "{source}, the real population of municipalities of {size} "
        "fell inside the 80 % band {measured} of the time {horizon} years ahead (it should "
        "be 80 %).",
        "nb": "{source} lå det faktiske folketallet i kommuner med "
        "{size} innenfor 80 %-intervallet i {measured} av tilfellene {horizon} år fram "
        "(det burde vært 80 %).",
    },
    "coverage_measured_county": {
        "en": "{source}, the real population of the counties (the largest "
        "units backtested) fell inside their 80 % bands {measured} of the time {horizon} "
        "years ahead (it should be 80 %).",
        "nb": "{source} lå det faktiske folketallet i fylkene (de "
        "største enhetene som er tilbaketestet) innenfor 80 %-intervallene i {measured} av "
        "tilfellene {horizon} år fram (det burde vært 80 %).",
    },
    "coverage_measured_region": {
        "en": "{source}, the real population of the labour-market regions "
        "fell inside their 80 % bands {measured} of the time {horizon} years ahead (it "
        "should be 80 %).",
        "nb": "{source} lå det faktiske folketallet i bo- og "
        "arbeidsmarkedsregionene innenfor 80 %-intervallene i {measured} av tilfellene "
        "{horizon} år fram (det burde vært 80 %).",
    },
    "coverage_measured_ages": {
        "en": "{source}, {horizon} years ahead, the 80 % intervals of "
        "municipalities' age groups held the real number {low} of the time ({low_groups}) "
        "to {high} ({high_groups}).",
        "nb": "{source}, {horizon} år fram, rommet 80 %-intervallene "
        "for kommunenes aldersgrupper det faktiske tallet i {low} ({low_groups}) til "
        "{high} ({high_groups}) av tilfellene.",
    },
    "coverage_nominal": {
        "en": "The bands have not been checked against past years in this report.",
        "nb": "Intervallene er ikke kontrollert mot tidligere år i denne rapporten.",
    },
    "ages_title": {"en": "Persons by age group", "nb": "Personer etter aldersgruppe"},
    "ages_caption": {
        "en": "Median, with the 80 % band below: in 8 of 10 simulated futures the number "
        "lies in that range. The groups follow kindergarten (1-5), primary school (6-12), "
        "lower secondary (13-15), upper secondary (16-19) and elderly care (67+).",
        "nb": "Median, med 80 %-intervallet under: i 8 av 10 simulerte framtider ligger tallet "
        "der. Gruppene følger barnehage (1-5), barneskole (6-12), ungdomsskole (13-15), "
        "videregående (16-19) og eldreomsorg (67+).",
    },
    "age_group": {"en": "Age", "nb": "Alder"},
    "total": {"en": "Total", "nb": "I alt"},
    "pyramid_title": {"en": "Population by age, {year}", "nb": "Befolkning etter alder, {year}"},
    "pyramid_caption": {
        "en": "Men to the left, women to the right, five-year age groups. Bars: median; "
        "whiskers: 80 % band. Outline: observed 1 January {base}. Both years share one scale.",
        "nb": "Menn til venstre, kvinner til høyre, femårige aldersgrupper. Søyler: median; "
        "streker: 80 %-intervall. Omriss: observert 1. januar {base}. Begge årene har "
        "samme skala.",
    },
    "men": {"en": "Men", "nb": "Menn"},
    "women": {"en": "Women", "nb": "Kvinner"},
    "drivers_title": {
        "en": "Drivers of growth, {first}-{last} (persons per year)",
        "nb": "Drivkrefter for vekst, {first}-{last} (personer per år)",
    },
    "drivers_caption": {
        "en": "Average yearly change split into its drivers. Green: births and deaths; "
        "blue: migration explained by immigration, centrality, jobs and young people "
        "entering work; orange: attractiveness (migration the model cannot explain by these "
        "factors); grey: noise. Whiskers: 80 % band.",
        "nb": "Gjennomsnittlig årlig endring fordelt på drivkrefter. Grønt: fødsler og "
        "dødsfall; blått: flytting forklart av innvandring, sentralitet, arbeidsplasser og "
        "unge som går inn i arbeidslivet; oransje: attraktivitet (flytting modellen ikke "
        "forklarer med disse faktorene); grått: tilfeldig variasjon. Streker: 80 %-intervall.",
    },
    "sources_title": {
        "en": "Where the band comes from",
        "nb": "Hva båndet består av",
    },
    "sources_caption": {
        "en": "Share of the variance of the projected population by source, each held at "
        "its mean in turn with the same random numbers for the rest. Computed for the "
        "nation and municipalities.",
        "nb": "Andel av variansen i det framskrevne folketallet etter kilde, der hver kilde "
        "ble holdt på sitt gjennomsnitt etter tur med de samme tilfeldige tallene for "
        "resten. Beregnet for landet og kommunene.",
    },
    "no_sources": {
        "en": "The split by source is computed for the nation and municipalities only.",
        "nb": "Fordelingen etter kilde er bare beregnet for landet og kommunene.",
    },
    "no_drivers": {
        "en": "No decomposition of growth for this unit.",
        "nb": "Ingen dekomponering av veksten for denne enheten.",
    },
    "no_ages": {
        "en": "The projection kept totals only; no age detail.",
        "nb": "Framskrivingen har bare totaltall; ingen aldersdetaljer.",
    },
    "derived_note": {
        "en": "Read this first: municipal births, deaths and migration are not observed in "
        "these data. Births and net migration are estimated from the population counts; "
        "deaths follow national rates.",
        "nb": "Les dette først: kommunale fødsler, dødsfall og flytting er ikke observert i "
        "disse dataene. Fødsler og nettoflytting er anslått fra folketallene; dødsfall "
        "følger nasjonale rater.",
    },
    "national": {"en": "Norway and the counties", "nb": "Norge og fylkene"},
    "bands": {"en": "How good are these bands?", "nb": "Hvor gode er intervallene?"},
    "attractiveness": {"en": "Attractiveness", "nb": "Attraktivitet"},
    "coefficients": {"en": "What drives migration", "nb": "Hva driver flyttingen"},
    "diagnostics": {"en": "Can the results be trusted?", "nb": "Kan resultatene stoles på?"},
    "sources": {"en": "Sources and method", "nb": "Kilder og metode"},
    "open_full": {"en": "Open full size", "nb": "Åpne i full størrelse"},
    "housing_title": {
        "en": "Effect of the demo housing plan on the population",
        "nb": "Effekten av eksempelplanen for boliger på folketallet",
    },
    "housing_caption": {
        "en": "The plan: {extra} more dwellings a year in {first}–{last} ({share} % above the mean "
        "of the last 5 observed years). Line: the median effect on the population on "
        "1 January (persons); shaded: the 90 % band; {draws} draws with common random "
        "numbers. An association given the other drivers, not a causal promise.",
        "nb": "Planen: {extra} flere boliger per år i {first}–{last} ({share} % over snittet for "
        "de siste 5 observerte årene). Linjen: median effekt på folketallet 1. januar "
        "(personer); skyggen: 90 %-båndet; {draws} trekk med felles tilfeldige tall. En "
        "sammenheng gitt de andre drivkreftene, ikke et kausalt løfte.",
    },
    "no_script": {
        "en": "The interactive part needs JavaScript; the figures below work without it.",
        "nb": "Den interaktive delen trenger JavaScript; figurene under virker uten.",
    },
}

#: Plain-language names of the growth components of :mod:`vekst.decompose`.
COMPONENT_NAMES: dict[str, dict[str, str]] = {
    "expected_births": {"en": "Expected births", "nb": "Forventede fødsler"},
    "fertility_deviation": {
        "en": "Births above/below expected",
        "nb": "Fødsler over/under forventet",
    },
    "expected_deaths": {"en": "Expected deaths", "nb": "Forventede dødsfall"},
    "mortality_deviation": {
        "en": "Deaths above/below expected",
        "nb": "Dødsfall over/under forventet",
    },
    "national_immigration": {"en": "National immigration", "nb": "Innvandring til Norge"},
    "centrality": {"en": "Centrality", "nb": "Sentralitet"},
    "own_jobs": {"en": "Job growth, own municipality", "nb": "Nye jobber i kommunen"},
    "neighbours_jobs": {"en": "Job growth, neighbours", "nb": "Nye jobber hos naboene"},
    "neighbour_jobs": {"en": "Job growth, neighbours", "nb": "Nye jobber hos naboene"},
    "ds": {"en": "Young people entering work", "nb": "Unge som går inn i arbeidslivet"},
    "housing": {"en": "Housing completions", "nb": "Ferdigstilte boliger"},
    "attractiveness": {"en": "Attractiveness", "nb": "Attraktivitet"},
    "residual": {"en": "Unexplained (noise)", "nb": "Uforklart (tilfeldig)"},
    "noise": {"en": "Unexplained (noise)", "nb": "Uforklart (tilfeldig)"},
    "total": {"en": "Total growth", "nb": "Samlet vekst"},
}


#: Fixed labels the plot functions draw in English -> Norwegian (legends, axes, panels).
FIGURE_LABELS_NB: dict[str, str] = {
    "50 % interval": "50 %-intervall",
    "80 % interval": "80 %-intervall",
    "95 % interval": "95 %-intervall",
    "Median projection": "Median framskriving",
    "Observed": "Observert",
    "Year": "År",
    "Men": "Menn",
    "Women": "Kvinner",
    "Age": "Alder",
    "Age (5-year groups)": "Alder (femårige grupper)",
    "Persons (men left, women right)": "Personer (menn til venstre, kvinner til høyre)",
    "Bayesian, by year": "Bayesiansk, per år",
    "OLS, year by year": "OLS, år for år",
    "Pooled (all years)": "Felles (alle år)",
    "Job growth (VRA), same year": "Arbeidsplassvekst (VRA), samme år",
    "VRA, one year before": "VRA, året før",
    "VRA, two years before": "VRA, to år før",
    "Centrality (index / 1000)": "Sentralitet (indeks / 1000)",
    "Young people entering work (DS)": "Unge som går inn i arbeidslivet (DS)",
    "Completed dwellings per 1,000, same year": "Ferdigstilte boliger per 1 000, samme år",
    "Completed dwellings per 1,000, year before": "Ferdigstilte boliger per 1 000, året før",
    "Persons (1 January)": "Personer (1. januar)",
}


def translate_figure(fig: Any, lang: Lang | str) -> None:
    """Put the fixed English labels of a figure into ``lang`` (in place; English: no-op).

    The plot functions stay language-neutral in their signatures; the report translates
    their fixed labels (legend entries, axis names) after drawing.

    Parameters
    ----------
    fig
        A :class:`matplotlib.figure.Figure`.
    lang
        ``"nb"`` or ``"en"``.
    """
    if Lang(lang) is not Lang.nb:
        return
    from matplotlib.text import Text

    for text in fig.findobj(Text):
        label = text.get_text()
        if label in FIGURE_LABELS_NB:
            text.set_text(FIGURE_LABELS_NB[label])


def t(key: str, lang: Lang | str, **fields: object) -> str:
    """The text ``key`` in ``lang`` with ``fields`` filled in.

    Parameters
    ----------
    key
        A key of :data:`STRINGS`.
    lang
        ``"nb"`` or ``"en"``.
    **fields
        Values for the ``{...}`` placeholders.

    Returns
    -------
    str
        The text.
    """
    text = STRINGS[key][Lang(lang).value]
    return text.format(**fields) if fields else text


def tr(lang: Lang | str, en: str, nb: str) -> str:
    """The English or the Norwegian text, written side by side where it is used.

    Parameters
    ----------
    lang
        ``"nb"`` or ``"en"``.
    en, nb
        The text in English and in Norwegian bokmål.

    Returns
    -------
    str
        The text in ``lang``.
    """
    return nb if Lang(lang) is Lang.nb else en


def fmt_number(value: float, lang: Lang | str, digits: int = 0) -> str:
    """``value`` with the language's digit grouping and decimal mark ("–" when missing).

    Parameters
    ----------
    value
        The number.
    lang
        ``"nb"`` (``12 345,6``) or ``"en"`` (``12,345.6``).
    digits
        Decimals shown.

    Returns
    -------
    str
        The formatted number; negative numbers use the minus sign (U+2212).
    """
    if value is None or not math.isfinite(float(value)):
        return "–"
    text = f"{float(value):,.{digits}f}"
    if Lang(lang) is Lang.nb:
        # Swap the marks in two steps; the thin non-breaking space keeps numbers whole.
        text = text.replace(",", "\u202f").replace(".", ",")
    return text.replace("-", "\u2212")


def fmt_int(value: float, lang: Lang | str = Lang.en) -> str:
    """A whole number of persons (see :func:`fmt_number`)."""
    return fmt_number(value, lang, 0)


def fmt_signed(value: float, digits: int = 2, lang: Lang | str = Lang.en) -> str:
    """A number with its sign always shown (``+0.12``, ``−0,40``)."""
    if value is None or not math.isfinite(float(value)):
        return "–"
    text = fmt_number(abs(float(value)), lang, digits)
    return ("+" if float(value) >= 0 else "\u2212") + text
