"""Horizontal federated learning: clients holding different rows train one model together.

:mod:`veil.fl.secagg` is its secure-aggregation layer (SecAgg+): the aggregator learns only the
sum of the surviving clients' clipped updates, never one client's update.
"""
