"""95 % intervals for an accuracy (a count of correct images) and for the paired difference of two."""

import math

from scipy.stats import binomtest, norm

Z95 = float(norm.ppf(0.975))


def wilson(correct: int, total: int) -> tuple[float, float]:
    """The Wilson score interval of correct / total, as fractions (scipy's binomtest)."""
    interval = binomtest(correct, total).proportion_ci(confidence_level=0.95, method="wilson")
    return float(interval.low), float(interval.high)


def paired_difference(gained: int, lost: int, total: int) -> tuple[float, float, float]:
    """The difference of two accuracies on the same `total` images, as fractions, with its 95 % interval.

    `gained`: images this run gets right and the reference wrong; `lost`: the other way round. The
    interval is Bonett and Price's adjusted Wald interval for paired proportions (J. Educ. Behav. Stat.
    37(4), 2012): it keeps its coverage with few discordant images, where a paired bootstrap collapses
    to a point (no discordant image: [0, 0]).
    """
    difference = (gained - lost) / total
    p_gained, p_lost = (gained + 1) / (total + 2), (lost + 1) / (total + 2)
    centre = p_gained - p_lost
    half = Z95 * math.sqrt((p_gained + p_lost - centre**2) / (total + 2))
    return difference, max(-1.0, centre - half), min(1.0, centre + half)


def mcnemar_exact_p(gained: int, lost: int) -> float:
    """McNemar's exact test of no difference: the two-sided binomial test of the discordant images."""
    return float(binomtest(gained, gained + lost, 0.5).pvalue) if gained + lost else 1.0
