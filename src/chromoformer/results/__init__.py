"""Results: pooled metrics and calibration, plots, the HTML report, genome-browser tracks, and the interpretation
folder (its writer and its reader)."""
