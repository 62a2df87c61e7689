"""Enhance every image under <dataroot>/testA with a trained NeRCo.

    python test.py --dataroot ./dataset/LOL --name LOL

Only Pre, H and G_A are loaded (CLIP is never built, testB is never read). Results go to
<results_dir>/<name>/test_<epoch>/images/<stem>_fake_B.png at each input's exact size,
with index.html showing input and output side by side.
"""

from __future__ import annotations

import logging
import os
import sys

from nerco.errors import UserError
from nerco.runtime import select_device, setup_logging
from options import TestOptions

logger = logging.getLogger("test")


def output_stems(paths: list[str], root: str) -> list[str]:
    """File stems, made unique with their sub-folder when two inputs share a stem."""
    stems = [os.path.splitext(os.path.basename(p))[0] for p in paths]
    if len(set(stems)) == len(stems):
        return stems
    return [os.path.splitext(os.path.relpath(p, root))[0].replace(os.sep, "_").replace(".", "_")
            for p in paths]


def run(opt) -> str:
    """Enhance the images; return the path of index.html."""
    import torch

    from data.single_dataset import SingleImageDataset
    from nerco.enhancer import load_enhancer
    from nerco.html import write_comparison_page
    from nerco.util import save_image, tensor2im

    device = select_device(opt.gpu_ids)
    folder = os.path.join(opt.dataroot, f"{opt.phase}A")
    dataset = SingleImageDataset.from_folder(folder, max_dataset_size=opt.max_dataset_size)
    if opt.preprocess != "none":
        logger.info("test.py enhances whole images: --preprocess %s is ignored", opt.preprocess)
    enhancer = load_enhancer(os.path.join(opt.checkpoints_dir, opt.name), opt.epoch, device)
    web_dir = os.path.join(opt.results_dir, opt.name, f"{opt.phase}_{opt.epoch}")
    image_dir = os.path.join(web_dir, "images")
    paths = dataset.paths[: opt.num_test] if opt.num_test else dataset.paths
    rows = []
    from tqdm import tqdm

    items = list(enumerate(zip(paths, output_stems(paths, folder))))
    for index, (path, stem) in tqdm(items, desc="enhancing", unit="image"):
        x = dataset[index]["A"].unsqueeze(0).to(device)
        try:
            with torch.no_grad():
                y = enhancer(x)
        except ValueError as err:
            raise UserError(f"{path}: {err}") from None
        names = {"input": f"images/{stem}_real_A.png", "NeRCo": f"images/{stem}_fake_B.png"}
        save_image(tensor2im(x), os.path.join(web_dir, names["input"]))
        save_image(tensor2im(y), os.path.join(web_dir, names["NeRCo"]))
        rows.append({"name": stem, "images": names})
        logger.debug("processed (%04d) %s", index, path)
    page = write_comparison_page(web_dir, f"Experiment = {opt.name}, Phase = {opt.phase}, "
                                 f"Epoch = {opt.epoch}", rows, ["input", "NeRCo"],
                                 width=min(opt.display_winsize, 512))
    logger.info("%d results in %s; page %s", len(rows), image_dir, page)
    return str(page)


def main(argv: list[str] | None = None) -> int:
    setup_logging()
    try:
        run(TestOptions().parse(argv))
    except UserError as err:
        logger.error("error: %s", err)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
