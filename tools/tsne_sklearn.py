#!/usr/bin/python3
"""libsupcon's t-SNE beside scikit-learn's on the same features (issue 7's comparison).

Input: the files `supcon tsne --save_features F.csv --out P` writes: F.csv (label,f0,f1,...
per image) and P.csv (index,label,class,x,y: libsupcon's map of the same rows in the same
order), and the seconds and KL divergence libsupcon's t-SNE reported (its log line: --lib_seconds,
--lib_kl).
Runs sklearn.manifold.TSNE with the same settings (2-D, perplexity 30, Barnes-Hut
theta 0.5, 1000 iterations, early exaggeration 12 for 250 of them, learning rate 'auto',
random initialisation), times it, and scores both maps the same way: trustworthiness at
k = 10 (sklearn.manifold.trustworthiness, Euclidean distances to the input features) and
the 20-nearest-neighbour accuracy of the 2-D points (leave-one-out, majority vote).
Prints one Markdown table. Debian: python3-sklearn.

    /usr/bin/python3 tools/tsne_sklearn.py F.csv P.csv --lib_seconds 21.5 [--name SupCon]
"""
import argparse
import sys
import time

import numpy as np


def knn_accuracy_2d(y, labels, k):
    """Leave-one-out k-NN majority vote on the 2-D map (ties: the smaller class)."""
    from sklearn.neighbors import NearestNeighbors
    nn = NearestNeighbors(n_neighbors=k + 1).fit(y)
    _, idx = nn.kneighbors(y)
    votes = labels[idx[:, 1:]]
    pred = np.array([np.bincount(v, minlength=labels.max() + 1).argmax() for v in votes])
    return 100.0 * float((pred == labels).mean())


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("features", help="label,f0,f1,... rows (supcon tsne --save_features)")
    p.add_argument("embedding", help="index,label,class,x,y rows (supcon tsne's OUT.csv)")
    p.add_argument("--lib_seconds", type=float, default=float("nan"),
                   help="seconds libsupcon's t-SNE took (its log line)")
    p.add_argument("--lib_kl", type=float, default=float("nan"),
                   help="KL divergence libsupcon reported (its log line)")
    p.add_argument("--name", default="", help="what the features are, for the table")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    import sklearn
    from sklearn.manifold import TSNE, trustworthiness
    data = np.loadtxt(args.features, delimiter=",", dtype=np.float32)
    labels, x = data[:, 0].astype(np.int64), data[:, 1:]
    ours = np.genfromtxt(args.embedding, delimiter=",", skip_header=1, usecols=(1, 3, 4))
    if ours.shape[0] != x.shape[0] or not np.array_equal(ours[:, 0].astype(np.int64), labels):
        sys.exit("tsne_sklearn: %s and %s do not hold the same rows" % (args.features, args.embedding))
    y_lib = ours[:, 1:3]

    kwargs = dict(n_components=2, perplexity=30.0, early_exaggeration=12.0, learning_rate="auto",
                  init="random", method="barnes_hut", angle=0.5, random_state=args.seed,
                  n_jobs=args.threads)
    try:
        tsne = TSNE(n_iter=1000, **kwargs)
    except TypeError:  # scikit-learn >= 1.5 renamed n_iter
        tsne = TSNE(max_iter=1000, **kwargs)
    t0 = time.perf_counter()
    y_sk = tsne.fit_transform(x)
    sk_seconds = time.perf_counter() - t0

    rows = []
    for impl, y, sec, kl in (("libsupcon", y_lib, args.lib_seconds, args.lib_kl),
                             ("scikit-learn %s" % sklearn.__version__, y_sk, sk_seconds,
                              float(tsne.kl_divergence_))):
        t = trustworthiness(x, y, n_neighbors=10)
        rows.append((impl, t, knn_accuracy_2d(y, labels, 20), sec, kl))
    print("| features | t-SNE | points | trustworthiness (k 10) | 20-NN accuracy on the map % | seconds | KL |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for impl, t, acc, sec, kl in rows:
        print("| %s | %s | %d | %.4f | %.2f | %.1f | %s |" % (
            args.name or args.features, impl, x.shape[0], t, acc, sec,
            "-" if kl != kl else "%.4f" % kl))


if __name__ == "__main__":
    main(sys.argv[1:])
