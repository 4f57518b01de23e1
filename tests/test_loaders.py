"Real-format loaders on small fixture folders written by the tests (HAM10000/ISIC, DermaMNIST .npz, ChestX-ray14)."
import hashlib
import numpy as np, pandas as pd, pytest, torch
from pathlib import Path
from PIL import Image
from robust_saliency.data import ham10000_dls, npz_dls, chestxray14_dls, annotations, HAM_CLASSES, CXR14_CLASSES
from robust_saliency.core import InputSpace
from conftest import write_img, write_cxr

def snapshot(root):
    "Every file under `root` with its content hash: the loaders must not change any of it"
    return {str(p.relative_to(root)): hashlib.md5(p.read_bytes()).hexdigest() for p in sorted(root.rglob('*')) if p.is_file()}

@pytest.fixture
def ham(tmp_path):
    d = tmp_path/'ham'; (d/'HAM10000_images_part_1').mkdir(parents=True); (d/'HAM10000_images_part_2').mkdir()
    rows = []
    for i, dx in enumerate(['nv'] * 12 + ['mel'] * 6 + ['bkl'] * 5 + ['df'] * 3):
        iid = f'ISIC_{i:07d}'
        write_img(d/f'HAM10000_images_part_{1 + i % 2}'/f'{iid}.jpg', seed=i)
        rows.append(dict(lesion_id=f'HAM_{i // 2:07d}', image_id=iid, dx=dx, dx_type='histo', age=50, sex='male', localization='back'))
    pd.DataFrame(rows).to_csv(d/'HAM10000_metadata.csv', index=False)
    return d

def test_ham10000_loads_balanced_and_grouped(ham):
    before = snapshot(ham)
    dls = ham10000_dls(ham, size=32, bs=4, valid_pct=0.3)
    assert dls.vocab == ['nv', 'mel', 'bkl']
    tr, va = annotations(dls, 'train'), annotations(dls, 'valid')
    counts = torch.bincount(torch.cat([tr.labels, va.labels]), minlength=3)
    assert counts.tolist() == [5, 5, 5]                        # undersampled to the smallest class (bkl: 5)
    df = pd.read_csv(ham/'HAM10000_metadata.csv').set_index('image_id')
    les = lambda a: {df.loc[p.stem, 'lesion_id'] for p in a.items}
    assert not les(tr) & les(va)                               # images of one lesion stay in one split
    xb, yb = dls.one_batch()
    assert xb.shape == (4, 3, 32, 32) and yb.shape == (4,)
    assert not InputSpace.from_dls(dls).is_identity
    assert snapshot(ham) == before                             # nothing under the data folder changed

def isic_csvs(ham, d):
    "The ISIC 2018 ground truth (one-hot) and lesion groupings of the `ham` fixture, written into folder `d`"
    gt = pd.read_csv(ham/'HAM10000_metadata.csv')
    onehot = pd.DataFrame({'image': gt['image_id'], **{c.upper(): (gt['dx'] == c).astype(float) for c in HAM_CLASSES}})
    onehot.to_csv(d/'ISIC2018_Task3_Training_GroundTruth.csv', index=False)
    groups = pd.DataFrame({'image': gt['image_id'], 'lesion_id': gt['lesion_id'], 'diagnosis_confirm_type': 'histopathology'})
    groups.to_csv(d/'ISIC2018_Task3_Training_LesionGroupings.csv', index=False)
    return d/'ISIC2018_Task3_Training_GroundTruth.csv', d/'ISIC2018_Task3_Training_LesionGroupings.csv', gt.set_index('image_id')['lesion_id']

def test_ham10000_options_and_isic_csv(ham, tmp_path):
    dls = ham10000_dls(ham, classes=['nv', 'mel'], balance=False, size=24, crop=28, bs=2)
    assert len(dls.train_ds) + len(dls.valid_ds) == 18 and dls.one_batch()[0].shape[-1] == 24
    gt_csv, groups_csv, _ = isic_csvs(ham, tmp_path)
    groups_csv.unlink()
    with pytest.warns(UserWarning, match="splitting by image"): isic = ham10000_dls(ham, csv=gt_csv, size=16, bs=2)
    assert isic.vocab == ['nv', 'mel', 'bkl'] and len(isic.train_ds) + len(isic.valid_ds) == 15

def test_isic_split_groups_by_lesion(ham, tmp_path):
    "The ISIC ground truth has no lesion column: the LesionGroupings CSV next to it keeps a lesion's images in one split"
    gt_csv, groups_csv, lesion = isic_csvs(ham, tmp_path)
    les = lambda a: {lesion[p.stem] for p in a.items}
    for seed in range(4):
        dls = ham10000_dls(ham, csv=gt_csv, balance=False, size=16, bs=2, valid_pct=0.3, seed=seed)
        tr, va = annotations(dls, 'train'), annotations(dls, 'valid')
        assert tr.items and va.items and not les(tr) & les(va), seed
    # passed explicitly (relative to the data folder or absolute) when it lies elsewhere
    other = tmp_path/'elsewhere'; other.mkdir(); groups_csv.rename(other/groups_csv.name)
    dls = ham10000_dls(ham, csv=gt_csv, groups_csv=other/groups_csv.name, balance=False, size=16, bs=2, valid_pct=0.3)
    assert not les(annotations(dls, 'train')) & les(annotations(dls, 'valid'))
    pd.read_csv(other/groups_csv.name).iloc[:-1].to_csv(other/'short.csv', index=False)
    with pytest.raises(ValueError, match="1 image.* have no lesion in short.csv, e.g. ISIC_0000025"):
        ham10000_dls(ham, csv=gt_csv, groups_csv=other/'short.csv')
    pd.read_csv(other/groups_csv.name).drop(columns='lesion_id').to_csv(other/'nolesion.csv', index=False)
    with pytest.raises(ValueError, match=r"lacks the column\(s\) \['lesion_id'\]"): ham10000_dls(ham, csv=gt_csv, groups_csv=other/'nolesion.csv')
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter('error')                         # groups_csv=False: split by image on purpose, no warning
        assert len(ham10000_dls(ham, csv=gt_csv, groups_csv=False, size=16, bs=2).valid_ds) > 0

def test_relative_paths(ham, cxr, tmp_path, monkeypatch):
    "A relative data folder: the CSV found in it is not joined to it a second time; file arguments may be given either way"
    monkeypatch.chdir(tmp_path)
    assert len(ham10000_dls('ham', size=16, bs=2).valid_ds) > 0
    assert len(ham10000_dls(Path('ham'), csv='HAM10000_metadata.csv', size=16, bs=2).valid_ds) > 0
    assert len(ham10000_dls('ham', csv='ham/HAM10000_metadata.csv', img_dirs=['HAM10000_images_part_1', 'ham/HAM10000_images_part_2'],
                            size=16, bs=2).valid_ds) > 0
    (tmp_path/'isic').mkdir(); isic_csvs(Path('ham'), Path('isic'))
    assert len(ham10000_dls('ham', csv='isic/ISIC2018_Task3_Training_GroundTruth.csv', size=16, bs=2).valid_ds) > 0
    for kw in ({}, dict(csv='cxr/Data_Entry_2017.csv', bbox_csv='cxr/BBox_List_2017.csv', img_dir='cxr/images')):
        a = chestxray14_dls('cxr', size=32, bs=4, bbox_ref=64, **kw)
        assert (~annotations(a, 'train').boxes.isnan()).any() or (~annotations(a, 'valid').boxes.isnan()).any()

def test_ham10000_errors(ham):
    df = pd.read_csv(ham/'HAM10000_metadata.csv')
    df.drop(columns='dx').to_csv(ham/'bad_cols.csv', index=False)
    with pytest.raises(ValueError, match=r"lacks the column\(s\) \['dx'\]"): ham10000_dls(ham, csv='bad_cols.csv')
    df.assign(dx=['melanoma'] + list(df.dx[1:])).to_csv(ham/'bad_lab.csv', index=False)
    with pytest.raises(ValueError, match="melanoma"): ham10000_dls(ham, csv='bad_lab.csv')
    with pytest.raises(ValueError, match="not HAM10000 diagnoses"): ham10000_dls(ham, classes=['nv', 'cat'])
    # bkl is the smallest class, so all of its images are used: ISIC_0000018..22
    (ham/'HAM10000_images_part_1'/'ISIC_0000018.jpg').unlink()
    with pytest.raises(ValueError, match="ISIC_0000018"): ham10000_dls(ham)
    write_img(ham/'HAM10000_images_part_1'/'ISIC_0000018.jpg')
    (ham/'HAM10000_images_part_2'/'ISIC_0000019.jpg').write_bytes(b'not a jpeg at all')
    with pytest.raises(ValueError, match=r"unreadable image file .*ISIC_0000019\.jpg"): ham10000_dls(ham)
    with pytest.raises(ValueError, match="data folder not found"): ham10000_dls(ham/'nope')

def truncate(f, keep=0.5):
    b = f.read_bytes(); f.write_bytes(b[:int(len(b) * keep)])

def test_truncated_jpeg(ham):
    "PIL's verify() does not read JPEG data: a truncated JPEG is caught up front, or later with the file named"
    f = ham/'HAM10000_images_part_1'/'ISIC_0000018.jpg'        # bkl: always used
    write_img(f, size=(200, 150), seed=3); truncate(f)
    with pytest.raises(ValueError, match=r"unreadable image file .*ISIC_0000018\.jpg: image file is truncated"): ham10000_dls(ham)
    write_img(f, size=(200, 150), seed=3)
    f.write_bytes(f.read_bytes() + b'\0' * 10)                 # bytes after the end marker: a valid JPEG, still accepted
    for p in ham.rglob('*.jpg'): write_img(p, size=(200, 150)) if p != f else None
    dls = ham10000_dls(ham, size=16, bs=2)
    files = dls.train_ds.tls[0].tfms[0].files
    i = next(i for i, j in enumerate(dls.train_ds.items) if files[j] != f)
    truncate(files[dls.train_ds.items[i]])                    # broken after the up-front check: named when read
    with pytest.raises(ValueError, match=rf"unreadable image file .*{files[dls.train_ds.items[i]].name}.*replace or remove it"):
        dls.train_ds[i]

def test_predict_path(ham):
    "`learn.predict` takes a path (str or Path), as the `FileRows` docstring promises"
    from fastai.vision.all import Learner
    from robust_saliency.core import small_cnn
    dls = ham10000_dls(ham, size=16, bs=2)
    learn = Learner(dls, small_cnn(n_out=3))
    f = ham/'HAM10000_images_part_1'/'ISIC_0000000.jpg'
    with learn.no_bar():
        a, b = learn.predict(str(f)), learn.predict(f)
        assert a[0] in dls.vocab and a[2].shape == (3,) and torch.allclose(a[2], b[2])
        with pytest.raises(ValueError, match="unreadable image file .*nope.jpg"): learn.predict(ham/'nope.jpg')

def test_npz(tmp_path):
    rng = np.random.default_rng(0)
    arrs = {f'{s}_{k}': v for s, n in (('train', 40), ('val', 10), ('test', 10))
            for k, v in (('images', rng.integers(0, 255, (n, 28, 28, 3), dtype=np.uint8)), ('labels', rng.integers(0, 7, (n, 1))))}
    np.savez(tmp_path/'dermamnist.npz', **arrs)
    before = snapshot(tmp_path)
    dls = npz_dls(tmp_path/'dermamnist.npz', bs=8)
    assert len(dls.train_ds) == 40 and len(dls.valid_ds) == 10 and len(dls.vocab) == 7
    xb, yb = dls.one_batch(); assert xb.shape == (8, 3, 28, 28)
    va = annotations(dls)
    assert torch.equal(va.labels, torch.from_numpy(arrs['val_labels']).reshape(-1))
    assert torch.allclose(InputSpace.from_dls(dls).to_pixel(dls.valid.one_batch()[0].as_subclass(torch.Tensor))[0],
                          torch.from_numpy(arrs['val_images'][0]).permute(2, 0, 1).float() / 255, atol=1e-5)
    assert npz_dls(tmp_path/'dermamnist.npz', size=32, bs=4).one_batch()[0].shape == (4, 3, 32, 32)
    assert snapshot(tmp_path) == before
    np.savez(tmp_path/'bad.npz', train_images=arrs['train_images'], train_labels=arrs['train_labels'])
    with pytest.raises(ValueError, match="val_images"): npz_dls(tmp_path/'bad.npz')
    with pytest.raises(ValueError, match="2 classes"): npz_dls(tmp_path/'dermamnist.npz', classes=['a', 'b'])
    (tmp_path/'junk.npz').write_bytes(b'junk')
    with pytest.raises(ValueError, match="unreadable npz"): npz_dls(tmp_path/'junk.npz')

@pytest.fixture
def cxr(tmp_path):
    labs = ['No Finding', 'Effusion', 'Nodule|Mass', 'Cardiomegaly', 'Effusion|Cardiomegaly', 'No Finding'] * 3
    return write_cxr(tmp_path/'cxr', labs, size=64, patients=[i // 2 for i in range(len(labs))],
                     boxes=[{'Image Index': '00000001_000.png', 'Finding Label': 'Effusion', 'Bbox [x': 8, 'y': 16, 'w': 32, 'h]': 16},
                            {'Image Index': '00000002_000.png', 'Finding Label': 'Nodule', 'Bbox [x': 40, 'y': 8, 'w': 8, 'h]': 8}])

def test_chestxray14(cxr):
    before = snapshot(cxr)
    dls = chestxray14_dls(cxr, size=32, bs=4, valid_pct=0.34)
    assert dls.vocab == CXR14_CLASSES
    xb, yb = dls.one_batch(); assert xb.shape == (4, 3, 32, 32) and yb.shape == (4, 14)
    tr, va = annotations(dls, 'train'), annotations(dls, 'valid')
    pid = lambda a: {int(p.stem[:8]) // 2 for p in a.items}
    assert not pid(tr) & pid(va)                               # patient-grouped split
    allb = torch.cat([tr.boxes, va.boxes]); items = tr.items + va.items
    k = [p.name for p in items].index('00000001_000.png')
    # boxes are in the frame of the 1024x1024 PNGs of the release (bbox_ref=1024), never of the OriginalImage columns
    assert torch.allclose(allb[k, CXR14_CLASSES.index('Effusion')], torch.tensor([8., 16., 40., 32.]) * 32 / 1024)
    assert allb[..., 0].isnan().sum() == allb.shape[0] * 14 - 2
    for ref in (64, (64, 64), None):                           # the fixture's boxes are drawn on its 64 px PNGs; None: read the PNG size
        d = chestxray14_dls(cxr, size=32, bs=4, valid_pct=0.34, bbox_ref=ref)
        a = annotations(d, 'train'), annotations(d, 'valid')
        b = torch.cat([a[0].boxes, a[1].boxes]); k = [p.name for p in a[0].items + a[1].items].index('00000001_000.png')
        assert torch.allclose(b[k, CXR14_CLASSES.index('Effusion')], torch.tensor([4., 8., 20., 16.])), ref   # 64 -> 32 px
    assert snapshot(cxr) == before

def test_chestxray14_boxes(cxr):
    bb = pd.read_csv(cxr/'BBox_List_2017.csv')
    extra = [{'Image Index': '00000001_000.png', 'Finding Label': 'Effusion', 'Bbox [x': 4, 'y': 24, 'w': 16, 'h]': 32},
             {'Image Index': '00000003_000.png', 'Finding Label': 'Infiltrate', 'Bbox [x': 0, 'y': 0, 'w': 8, 'h]': 8}]
    pd.concat([bb, pd.DataFrame(extra)]).to_csv(cxr/'BBox_List_2017.csv', index=False)
    d = chestxray14_dls(cxr, size=64, bs=4, bbox_ref=64)
    a = annotations(d, 'train'), annotations(d, 'valid')
    b = torch.cat([a[0].boxes, a[1].boxes]); names = [p.name for p in a[0].items + a[1].items]
    # two boxes for one image and finding: the box covering both, not the last one read
    assert b[names.index('00000001_000.png'), CXR14_CLASSES.index('Effusion')].tolist() == [4., 16., 40., 56.]
    assert b[names.index('00000003_000.png'), CXR14_CLASSES.index('Infiltration')].tolist() == [0., 0., 8., 8.]
    with pytest.warns(UserWarning, match="beyond the bbox_ref frame"): chestxray14_dls(cxr, size=32, bs=4, bbox_ref=32)
    for bad in (0, -5, 'big', (64,)):
        with pytest.raises(ValueError, match="`bbox_ref` must be a positive size"): chestxray14_dls(cxr, bbox_ref=bad)

def test_chestxray14_errors(cxr):
    df = pd.read_csv(cxr/'Data_Entry_2017.csv')
    df.assign(**{'Finding Labels': ['Flu'] + list(df['Finding Labels'][1:])}).to_csv(cxr/'bad.csv', index=False)
    with pytest.raises(ValueError, match="Flu"): chestxray14_dls(cxr, csv='bad.csv')
    df.drop(columns='Finding Labels').to_csv(cxr/'bad2.csv', index=False)
    with pytest.raises(ValueError, match="Finding Labels"): chestxray14_dls(cxr, csv='bad2.csv')
    (cxr/'images'/'00000004_000.png').unlink()
    with pytest.raises(ValueError, match="00000004_000"): chestxray14_dls(cxr)

def test_chestxray14_check_levels(cxr):
    "ChestX-ray14 checks headers by default (verifying 45 GB of PNGs would read them all); check='full' verifies each file"
    f = cxr/'images'/'00000003_000.png'
    b = bytearray(f.read_bytes()); b[len(b) // 2] ^= 0xFF; f.write_bytes(bytes(b))   # a flipped byte: a bad chunk checksum
    chestxray14_dls(cxr, size=32, bs=2)                                               # the header is intact
    with pytest.raises(ValueError, match=r"unreadable image file .*00000003_000\.png"): chestxray14_dls(cxr, size=32, check='full')
    f.write_bytes(b'not a png')
    with pytest.raises(ValueError, match="00000003_000"): chestxray14_dls(cxr, size=32)   # a header check still reads headers
    chestxray14_dls(cxr, size=32, bs=2, check=False)                                  # no check: found when read
    with pytest.raises(ValueError, match="'full', 'header' or False"): chestxray14_dls(cxr, check='fast')

INFO_KEYS = {'classes', 'n_total_found', 'dropped_by_class', 'dropped_by_balance', 'dropped_by_n', 'n_train', 'n_valid',
             'split', 'multi_label'}

def accounted(info):
    "`dls.info` adds up: what was found, less what was dropped, is what the splits hold"
    assert set(info) == INFO_KEYS and all(isinstance(info[k], int) for k in INFO_KEYS - {'classes', 'split', 'multi_label'})
    return info['n_total_found'] - info['dropped_by_class'] - info['dropped_by_balance'] - info['dropped_by_n'] == \
        info['n_train'] + info['n_valid']

def test_ham10000_info_and_n(ham, tmp_path):
    "`dls.info` records what the class filter, balancing and `n` dropped; `n` samples by class, seeded"
    dls = ham10000_dls(ham, size=16, bs=2)
    i = dls.info
    assert accounted(i) and i['classes'] == ['nv', 'mel', 'bkl'] and i['split'] == 'lesion' and not i['multi_label']
    assert (i['n_total_found'], i['dropped_by_class'], i['dropped_by_balance'], i['dropped_by_n']) == (26, 3, 8, 0)
    assert (i['n_train'], i['n_valid']) == (len(dls.train_ds), len(dls.valid_ds))
    ub = ham10000_dls(ham, balance=False, size=16, bs=2).info
    assert accounted(ub) and ub['dropped_by_balance'] == 0 and ub['n_train'] + ub['n_valid'] == 23
    # n after balancing: a class-stratified sample (5:5:5 of 15 -> 3:3:3 of 9)
    d9 = ham10000_dls(ham, n=9, size=16, bs=2)
    tr, va = annotations(d9, 'train'), annotations(d9, 'valid')
    assert torch.bincount(torch.cat([tr.labels, va.labels]), minlength=3).tolist() == [3, 3, 3]
    assert accounted(d9.info) and d9.info['dropped_by_n'] == 6 and d9.info['dropped_by_balance'] == 8
    # without balancing, in the classes' proportions: 12:6:5 of 23 -> 6:3:3 of 12 (largest remainders)
    d12 = ham10000_dls(ham, balance=False, n=12, size=16, bs=2)
    lab = torch.cat([annotations(d12, 'train').labels, annotations(d12, 'valid').labels])
    assert torch.bincount(lab, minlength=3).tolist() == [6, 3, 3] and accounted(d12.info)
    items = lambda d: sorted(p.name for s in ('train', 'valid') for p in annotations(d, s).items)
    assert items(d12) == items(ham10000_dls(ham, balance=False, n=12, size=16, bs=2))              # seeded
    assert any(items(d12) != items(ham10000_dls(ham, balance=False, n=12, seed=s, size=16, bs=2)) for s in (1, 2, 3))
    big = ham10000_dls(ham, balance=False, n=1000, size=16, bs=2).info                             # more than found: all
    assert big['n_train'] + big['n_valid'] == 23 and big['dropped_by_n'] == 0
    for bad in (0, -1, 2.5):
        with pytest.raises(ValueError, match="`n` must be a positive number"): ham10000_dls(ham, n=bad)
    gt_csv, groups_csv, _ = isic_csvs(ham, tmp_path)
    assert ham10000_dls(ham, csv=gt_csv, size=16, bs=2).info['split'] == 'lesion'      # lesions from the groupings CSV
    assert ham10000_dls(ham, csv=gt_csv, groups_csv=False, size=16, bs=2).info['split'] == 'image'

def test_ham10000_n_checks_only_the_sample(ham):
    "A subsample reads only its own images: a broken file outside it does not stop the loader"
    d = ham10000_dls(ham, balance=False, n=6, size=16, bs=2)
    used = {p.name for s in ('train', 'valid') for p in annotations(d, s).items}
    other = next(p for p in sorted(ham.rglob('*.jpg')) if p.name not in used and pd.read_csv(
        ham/'HAM10000_metadata.csv').set_index('image_id').loc[p.stem, 'dx'] in ('nv', 'mel', 'bkl'))
    other.write_bytes(b'broken')
    assert ham10000_dls(ham, balance=False, n=6, size=16, bs=2).info == d.info
    with pytest.raises(ValueError, match=rf"unreadable image file .*{other.name}"): ham10000_dls(ham, balance=False, size=16)

def test_npz_info_and_n(tmp_path):
    rng = np.random.default_rng(0)
    arrs = {f'{s}_{k}': v for s, n in (('train', 80), ('val', 20))
            for k, v in (('images', rng.integers(0, 255, (n, 28, 28, 3), dtype=np.uint8)), ('labels', np.arange(n)[:, None] % 4))}
    np.savez(tmp_path/'d.npz', **arrs)
    full = npz_dls(tmp_path/'d.npz', bs=8).info
    assert accounted(full) and (full['n_total_found'], full['n_train'], full['n_valid'], full['split']) == (100, 80, 20, 'image')
    d = npz_dls(tmp_path/'d.npz', n=40, bs=8)
    assert accounted(d.info) and (d.info['n_train'], d.info['n_valid'], d.info['dropped_by_n']) == (32, 8, 60)
    assert torch.bincount(annotations(d, 'train').labels, minlength=4).tolist() == [8] * 4      # each split stratified
    assert torch.bincount(annotations(d, 'valid').labels, minlength=4).tolist() == [2] * 4
    va = annotations(d)                                        # the sampled images keep their own labels
    val = {arrs['val_images'][j].tobytes(): int(arrs['val_labels'][j, 0]) for j in range(20)}
    assert all(val[(x.permute(1, 2, 0) * 255).round().to(torch.uint8).numpy().tobytes()] == int(l) for x, l in zip(va.images, va.labels))
    assert npz_dls(tmp_path/'d.npz', n=10**6, bs=8).info == full
    with pytest.raises(ValueError, match="no images left in the .val. split with n=1"): npz_dls(tmp_path/'d.npz', n=1)

def test_chestxray14_info_and_n(tmp_path):
    "`n` samples whole patients, from those with and those without a finding in proportion; `dls.info` adds up"
    labs = (['No Finding'] * 3 + ['Effusion']) * 10                      # 40 images, 20 patients of 2
    d = write_cxr(tmp_path/'cxr', labs, size=32, patients=[i // 2 for i in range(40)])
    full = chestxray14_dls(d, size=16, bs=4).info
    assert accounted(full) and full['split'] == 'patient' and full['multi_label'] and full['classes'] == CXR14_CLASSES
    assert (full['n_total_found'], full['dropped_by_n']) == (40, 0)
    for seed in range(3):
        dls = chestxray14_dls(d, size=16, bs=4, n=20, seed=seed)
        tr, va = annotations(dls, 'train'), annotations(dls, 'valid')
        pids = [int(p.stem[:8]) // 2 for p in tr.items + va.items]
        assert sorted(pids) == sorted(2 * sorted(set(pids)))           # whole patients (two images each)
        assert len(pids) == 20 and accounted(dls.info) and dls.info['dropped_by_n'] == 20
        pos = {pid for pid, l in zip(pids, torch.cat([tr.labels, va.labels])) if l.any()}
        assert len(pos) == 5                                             # half the patients have a finding: 5 of the 10
        assert not {p for p in map(lambda q: int(q.stem[:8]) // 2, tr.items)} & {int(q.stem[:8]) // 2 for q in va.items}
    a, b = (chestxray14_dls(d, size=16, bs=4, n=20, seed=s) for s in (0, 0))
    assert annotations(a, 'train').items == annotations(b, 'train').items
    assert chestxray14_dls(d, size=16, bs=4, n=500).info == full

def test_chestxray14_without_patient_id_warns(cxr):
    df = pd.read_csv(cxr/'Data_Entry_2017.csv')
    df.drop(columns='Patient ID').to_csv(cxr/'nopid.csv', index=False)
    with pytest.warns(UserWarning, match="no `Patient ID` column: splitting by image"):
        dls = chestxray14_dls(cxr, csv='nopid.csv', size=16, bs=4)
    assert dls.info['split'] == 'image' and accounted(dls.info)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter('error')                         # with the column: no warning
        assert chestxray14_dls(cxr, size=16, bs=4).info['split'] == 'patient'

def cut_png(f, keep=0.4):
    "Cut PNG `f` short inside its image data: its header still opens"
    b = f.read_bytes(); f.write_bytes(b[:int(len(b) * keep)])
    with Image.open(f) as im: assert im.size                   # the header check passes

def test_unreadable_file_during_training(tmp_path):
    "A PNG cut short after its header passes check='header'; training then names it, not PyTorch's worker traceback"
    from fastai.vision.all import Learner
    from robust_saliency.core import small_cnn
    from robust_saliency.data import UnreadableImageError
    d = write_cxr(tmp_path/'cxr', ['No Finding', 'Effusion'] * 6, size=64, patients=list(range(12)))
    bad = d/'images'/'00000004_000.png'; cut_png(bad)
    dls = chestxray14_dls(d, size=32, bs=4)                    # check='header': passes
    assert dls.train.fake_l.num_workers > 0                    # batches come from worker processes
    learn = Learner(dls, small_cnn(n_out=14))
    with pytest.raises(ValueError) as e, learn.no_bar(), learn.no_logging(): learn.fit(1)
    msg = str(e.value)
    assert isinstance(e.value, UnreadableImageError) and e.value.__cause__ is None
    assert msg.startswith(f"unreadable image file {bad}") and "check='full'" in msg and "replace or remove it" in msg
    assert 'Traceback' not in msg and 'worker' not in msg and '\n' not in msg
    with pytest.raises(UnreadableImageError) as e0:          # the same error from the main process
        [b for dl in (dls.train.new(num_workers=0), dls.valid.new(num_workers=0)) for b in dl]
    assert str(e0.value) == msg
    with pytest.raises(ValueError, match=rf"unreadable image file .*{bad.name}"): chestxray14_dls(d, size=32, check='full')
