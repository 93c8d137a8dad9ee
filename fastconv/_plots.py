"""PNG plots for ``fastconv train``: learning curves and misclassified test images.

matplotlib is optional (``pip install fastconv[plot]``) and imported only here, when a
plot is drawn. Figures are built with ``matplotlib.figure.Figure`` (no pyplot), so no
GUI backend is selected and no global figure state is touched.
"""
import numpy as np

#: Fashion-MNIST's class names, by label.
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")


def class_names(kind):
    """Label names of a dataset kind: Fashion-MNIST's names, else the digits."""
    return FASHION_MNIST_CLASSES if kind == "fashion-mnist" else tuple(str(i) for i in range(10))


def matplotlib_missing():
    """None when matplotlib imports, else the reason it does not (a str)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError as err:
        return f"matplotlib is not installed ({err}); pip install 'fastconv[plot]'"
    return None


def _figure(**kwargs):
    from matplotlib.figure import Figure

    return Figure(**kwargs)


def plot_curves(step_loss, steps_per_epoch, train_acc, test_acc, path, val_acc=None,
                best_epoch=None):
    """Training loss per step (raw and smoothed) and accuracy per epoch, side by side.

    Parameters
    ----------
    step_loss : sequence of float
        The loss of every training step.
    steps_per_epoch : int
    train_acc, test_acc : sequence of float
        Accuracy after each epoch (train on a fixed sample, test on the whole test set).
    path : str or os.PathLike
        The PNG to write.
    val_acc : sequence of float, optional
        Accuracy on the validation split after each epoch.
    best_epoch : int, optional
        The epoch whose parameters were kept (marked by a vertical line).

    Returns
    -------
    matplotlib.figure.Figure
        The figure written (its axes: loss, accuracy).
    """
    fig = _figure(figsize=(10, 4), layout="constrained")
    ax_loss, ax_acc = fig.subplots(1, 2)
    loss = np.asarray(step_loss, dtype=np.float64)
    epochs = np.arange(1, loss.size + 1) / steps_per_epoch
    ax_loss.plot(epochs, loss, color="0.75", linewidth=0.6, label="per step")
    window = max(1, min(loss.size // 10, steps_per_epoch // 5))
    if window > 1:
        smooth = np.convolve(loss, np.ones(window) / window, mode="valid")
        ax_loss.plot(epochs[window - 1:], smooth, color="C0", label=f"mean of {window} steps")
    ax_loss.set(xlabel="epoch", ylabel="training loss", title="loss")
    ax_loss.set_yscale("log")
    ax_loss.legend()
    ep = np.arange(1, len(test_acc) + 1)
    # Markers, unclipped (an accuracy of 1.0 sits on the top edge): with one or two
    # epochs the points are the whole plot. The legend gives the last values.
    ax_acc.plot(ep, train_acc, "o-", label=f"train (sample): {train_acc[-1]:.4f}",
                clip_on=False, zorder=3)
    ax_acc.plot(ep, test_acc, "s-", label=f"test: {test_acc[-1]:.4f}", clip_on=False,
                zorder=3)
    if val_acc is not None:
        ax_acc.plot(ep, val_acc, "^-", label=f"validation: {val_acc[-1]:.4f}", clip_on=False,
                    zorder=3)
    if best_epoch is not None:
        ax_acc.axvline(best_epoch, color="0.5", linestyle=":", label=f"best epoch {best_epoch}")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="accuracy",
               xlim=(0.5, ep.size + 0.5),
               ylim=accuracy_range(list(train_acc) + list(test_acc) + list(val_acc or [])))
    if ep.size <= 10:
        ax_acc.set_xticks(ep)
    else:
        ax_acc.xaxis.get_major_locator().set_params(integer=True)
    ax_acc.grid(alpha=0.3)
    ax_acc.legend(title="last epoch")
    fig.savefig(path, dpi=100)
    return fig


def accuracy_range(values, min_span=0.1):
    """The y range of an accuracy plot: the values with a margin, at least ``min_span``
    wide, inside [0, 1] (matplotlib's default around lone equal points is +-4 %, e.g.
    0.96-1.04: accuracies above 1).

    >>> accuracy_range([0.99, 0.99])
    (0.9, 1.0)
    """
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return (0.0, 1.0)
    lo, hi = float(v.min()), float(v.max())
    pad = max(0.1 * (hi - lo), (min_span - (hi - lo)) / 2)
    bottom, top = lo - pad, hi + pad
    if top > 1.0:
        bottom, top = bottom - (top - 1.0), 1.0
    if bottom < 0.0:
        bottom, top = 0.0, min(1.0, top - bottom)
    return (round(bottom, 6), round(top, 6))


def plot_misclassified(images, true, pred, names, path, limit=20):
    """A grid of the first ``limit`` misclassified images, titled true -> predicted
    (the book's ``misclassified_mnist.py``).

    Parameters
    ----------
    images : ndarray of shape (N, 1, H, W) or (N, H, W)
        The test images.
    true, pred : integer ndarray of shape (N,)
    names : sequence of str
        Label names.
    path : str or os.PathLike
    limit : int

    Returns
    -------
    int
        How many images the grid shows (0 when nothing was misclassified: no file then).
    """
    wrong = np.flatnonzero(np.asarray(true) != np.asarray(pred))[:limit]
    if wrong.size == 0:
        return 0
    cols = min(5, wrong.size)
    rows = -(-wrong.size // cols)
    fig = _figure(figsize=(2.0 * cols, 2.2 * rows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols)).ravel()
    for ax in axes:
        ax.set_axis_off()
    for ax, i in zip(axes, wrong):
        img = np.asarray(images[i], dtype=np.float64)
        ax.imshow(img.reshape(img.shape[-2:]), cmap="gray_r", interpolation="nearest")
        ax.set_title(f"{names[true[i]]}\n-> {names[pred[i]]}", fontsize=8,
                     color="C3")
    fig.suptitle("misclassified test images: true -> predicted")
    fig.savefig(path, dpi=100)
    return int(wrong.size)
