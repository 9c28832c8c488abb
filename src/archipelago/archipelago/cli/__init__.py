"""Command-line tools of the archipelago package (click): vlmc, archipelago, xseg."""
