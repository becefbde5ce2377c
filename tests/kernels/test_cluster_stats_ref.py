# Cluster means equal the mean of each cluster's members (zeros for empty clusters).
import torch

from svg_ear_compile.kernels.cluster_stats_ref import cluster_means
from svg_ear_compile.kernels.permute_ref import cluster_layout


def test_means_match_member_loop():
    gen = torch.Generator().manual_seed(1)
    labels = torch.randint(0, 6, (2, 200), generator=gen)
    labels[labels == 3] = 2
    x = torch.randn(2, 200, 5, generator=gen, dtype=torch.float64)
    means = cluster_means(x, labels, cluster_layout(labels, 7).sizes)
    for g in range(2):
        for c in range(7):
            members = x[g, labels[g] == c]
            expected = members.mean(0) if len(members) else torch.zeros(5, dtype=x.dtype)
            torch.testing.assert_close(means[g, c], expected)
