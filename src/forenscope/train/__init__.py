"""Fitting the learned heads and baselines on a labelled manifest (`forenscope train`)."""
