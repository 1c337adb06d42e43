"""The Train page (AppTest through app.py): the live layer table against core's model, Start ->
a background job that finishes and is saved, a diverging run's message, and a queued job."""
from __future__ import annotations


import pytest
from streamlit.testing.v1 import AppTest

from core.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from core.data import fill_model_shape
from core.models import build_model
from ui.state import DATA_CONFIG_KEY, SELECTED_RUN_KEY

from apptest_helpers import chart_frames, open_app_page
JOB_TIMEOUT = 120


def train_page(errors=(), **widgets) -> AppTest:
    """The Train page, with widget values (by key) set before its first run; error boxes holding
    one of `errors` are the test's to check (any other fails it)."""
    return open_app_page("views/train.py", widgets, errors=errors)


def followed_job(at: AppTest) -> str:
    """The job id in the page's ?job= query parameter (AppTest may hold it as a one-item list)."""
    job_id = at.query_params["job"]
    return job_id[0] if isinstance(job_id, list) else job_id


def shown_parameters(at: AppTest) -> int:
    (metric,) = [m for m in at.metric if m.label == "Parameters"]
    return int(metric.value.replace(",", ""))


def expected_parameters(digits, **model) -> int:
    return sum(p.numel() for p in build_model(fill_model_shape(ModelConfig(**model), digits)).parameters())




@pytest.fixture
def one_job_at_a_time(monkeypatch):
    monkeypatch.setenv("AE_LAB_MAX_JOBS", "1")


@pytest.fixture
def registry(app_registry):
    return app_registry


def test_layer_table_total_is_the_models_parameter_count(no_runs, digits):
    at = train_page()
    assert not at.error
    assert shown_parameters(at) == expected_parameters(digits)
    table = next(d.value for d in at.dataframe if "Output shape" in d.value.columns)
    assert table["Parameters"].sum() == expected_parameters(digits)
    assert table["Output shape"].iloc[-1] == "1×8×8"  # the reconstruction has the input's shape

    at.number_input(key="cfg_latent").set_value(3).run()
    assert shown_parameters(at) == expected_parameters(digits, latent=3) != expected_parameters(digits)

    at.radio(key="cfg_family").set_value("dense").run()
    at.text_input(key="cfg_hidden_small").input("64, 32").run()
    assert shown_parameters(at) == expected_parameters(digits, family="dense", hidden=[64, 32], latent=3)


def test_unreadable_sizes_are_said_and_block_start(no_runs):
    at = train_page(["not a list of whole numbers"])
    at.text_input(key="cfg_channels_small").input("16, lots").run()
    assert not at.exception
    assert "not a list of whole numbers" in at.error[0].value
    assert at.button(key="start_job").disabled


def test_start_trains_in_the_background_and_saves_the_run(no_runs, registry):
    at = train_page(cfg_epochs=2, cfg_batch_size=256, cfg_name="ui-run")
    at.button(key="start_job").click().run()
    assert not at.exception
    job_id = followed_job(at)
    assert registry.snapshot(job_id).name == "ui-run"

    done = registry.wait(job_id, timeout=JOB_TIMEOUT)
    assert done.status == "finished"
    at.run()
    assert not at.exception
    assert [s.value for s in at.success] == [done.message]
    assert (no_runs / "ui-run" / "info.json").is_file()
    assert at.session_state[SELECTED_RUN_KEY] == "ui-run"
    (bar,) = at.get("progress")
    assert "epoch 2/2" in bar.proto.text and "img/s" in bar.proto.text
    frames = chart_frames(at)
    epochs = next(f for f in frames if "epoch" in f.columns)
    assert sorted(set(epochs["series"])) == ["train loss", "validation loss"]
    assert sorted(set(epochs["epoch"])) == [1, 2]
    batches = next(f for f in frames if "batch" in f.columns)
    assert len(batches[batches["series"] == "per batch"]) == len(done.batch_losses)
    assert any("Reconstructions after epoch 2" in c for img in at.image for c in img.captions)


def test_a_diverging_run_shows_its_message(no_runs, registry):
    at = train_page(["lower learning rate"], cfg_optimizer="sgd", cfg_lr=1000.0, cfg_output_activation="none",
                    cfg_epochs=3, cfg_batch_size=64)
    at.button(key="start_job").click().run()
    job_id = registry.snapshots()[0].id
    assert registry.wait(job_id, timeout=JOB_TIMEOUT).status == "diverged"
    at.run()
    assert not at.exception
    assert len(at.error) == 1
    assert "lower learning rate" in at.error[0].value


def test_a_start_beyond_the_limit_is_queued(one_job_at_a_time, no_runs, registry):
    jobs = registry
    assert jobs.max_concurrent == 1
    at = train_page(cfg_epochs=1000, cfg_batch_size=16, cfg_name="long-one")
    at.button(key="start_job").click().run()
    first = followed_job(at)
    at.text_input(key="cfg_name").input("second-one").run()
    at.button(key="start_job").click().run()
    assert not at.exception
    second = jobs.snapshots()[0]
    assert second.name == "second-one" and second.status == "queued"
    assert "Queued: position 1 — it starts when the running job ends." in [i.value for i in at.info]
    # The job list shows both, and following the first one shows its Stop button.
    (follow,) = [r for r in at.radio if r.key.startswith("follow_job")]
    assert len(follow.options) == 2
    follow.set_value(first).run()
    assert followed_job(at) == first
    at.button(key="stop_job").click().run()
    assert jobs.wait(first, timeout=JOB_TIMEOUT).status == "stopped"
    jobs.stop(second.id)
    assert jobs.wait(second.id, timeout=JOB_TIMEOUT).status == "stopped"


def test_two_runs_with_one_name_stay_apart(no_runs, registry):
    """Streamlit sends a radio's label back, so equal labels would follow the wrong job."""
    at = train_page(cfg_epochs=1, cfg_batch_size=512, cfg_name="same")
    at.button(key="start_job").click().run()
    first = registry.snapshots()[0].id
    registry.wait(first, timeout=JOB_TIMEOUT)
    # After a Start the name box is empty again (issue 8): the second run is named on purpose.
    assert at.text_input(key="cfg_name").value == ""
    at.text_input(key="cfg_name").set_value("same")
    at.button(key="start_job").click().run()
    second = registry.snapshots()[0].id
    registry.wait(second, timeout=JOB_TIMEOUT)
    at.run()
    (follow,) = [r for r in at.radio if r.key.startswith("follow_job")]
    assert len(set(follow.options)) == 2
    assert follow.value == second
    assert at.session_state[SELECTED_RUN_KEY] == "same-2"  # the newer run, saved under a free name
    follow.set_value(first).run()
    assert followed_job(at) == first
    assert "Saved as run **same**." in [c.value for c in at.caption]


def test_a_queued_run_is_still_followed_after_it_ran(one_job_at_a_time, no_runs, registry):
    """A second student's run waits in the queue, then runs and ends: the tab that started it
    still shows it (the job list's labels must not change as the job goes queued -> running)."""
    jobs = registry
    first = jobs.start(RunConfig(data=DataConfig(dataset="digits"),
                                 train=TrainConfig(epochs=1000, batch_size=16, device="cpu"), name="alice"))
    at = train_page(cfg_epochs=1, cfg_batch_size=512, cfg_name="bob")
    at.button(key="start_job").click().run()
    bob = jobs.snapshots()[0]
    assert bob.status == "queued"
    (follow,) = [r for r in at.radio if r.key.startswith("follow_job")]
    labels_while_queued = list(follow.options)
    jobs.stop(first)
    jobs.wait(first, timeout=JOB_TIMEOUT)
    assert jobs.wait(bob.id, timeout=JOB_TIMEOUT).status == "finished"
    at.run()
    (follow,) = [r for r in at.radio if r.key.startswith("follow_job")]
    assert sorted(follow.options) == sorted(labels_while_queued)
    assert follow.value == bob.id
    assert followed_job(at) == bob.id
    assert "Saved as run **bob**." in [c.value for c in at.caption]


def test_a_stale_poll_right_after_start_keeps_following_the_new_job(one_job_at_a_time, no_runs, registry):
    """Issue 9: right after Start, one of five tabs switched to an old finished job. The live view
    polls every half second; a poll the browser sent before Start's answer arrived carries the job
    list's old choice. That stale value must not count as the student choosing the old job again."""
    jobs = registry
    digits_cfg = dict(data=DataConfig(dataset="digits"), name="old-run")
    old = jobs.start(RunConfig(train=TrainConfig(epochs=1, batch_size=512, device="cpu"), **digits_cfg))
    assert jobs.wait(old, timeout=JOB_TIMEOUT).status == "finished"
    blocker = jobs.start(RunConfig(data=DataConfig(dataset="digits"),
                                   train=TrainConfig(epochs=1000, batch_size=16, device="cpu"), name="blocker"))
    at = train_page(cfg_epochs=1, cfg_batch_size=512, cfg_name="mine")
    (follow,) = [r for r in at.radio if r.key.startswith("follow_job")]
    follow.set_value(old).run()  # the student looks at the old run first
    assert followed_job(at) == old
    # What the browser shows (and would send with a poll) just before Start is pressed.
    before_start = at._tree.get_widget_states()
    at.button(key="start_job").click().run()
    mine = jobs.snapshots()[0]
    assert mine.name == "mine" and mine.status == "queued"
    assert followed_job(at) == mine.id
    at._run(before_start)  # the stale poll (AppTest has no public way to send old widget states)
    assert not at.exception
    assert followed_job(at) == mine.id
    assert "Queued: position 1 — it starts when the running job ends." in [i.value for i in at.info]
    (follow,) = [r for r in at.radio if r.key.startswith("follow_job")]
    assert follow.value == mine.id
    jobs.stop(blocker)


# ---------------------------------------------------------------- issue 9: limits and plain words

def test_a_huge_model_is_refused_per_keystroke_without_being_built(no_runs, monkeypatch):
    import core.models

    at = train_page(["parameters, above this server's limit"])
    at.radio(key="cfg_family").set_value("dense").run()
    built = []
    real_build = core.models.build_model
    monkeypatch.setattr(core.models, "build_model", lambda cfg: built.append(list(cfg.hidden)) or real_build(cfg))
    at.text_input(key="cfg_hidden_small").input("30000, 30000").run()
    assert not at.exception
    (error,) = at.error
    assert "parameters, above this server's limit" in error.value and "AE_LAB_MAX_PARAMS" in error.value
    assert at.button(key="start_job").disabled
    assert [30000, 30000] not in built  # refused from the config: nothing allocated
    at.text_input(key="cfg_hidden_small").input("1000000000").run()
    assert not at.exception and "parameters" in at.error[0].value


def test_the_epoch_and_latent_limits_are_said_on_the_page(no_runs, monkeypatch):
    monkeypatch.setenv("AE_LAB_MAX_EPOCHS", "5")
    monkeypatch.setenv("AE_LAB_MAX_LATENT", "8")
    at = train_page(["above this server's limit"], cfg_epochs=6)
    assert "6 epochs are above this server's limit of 5" in at.error[0].value
    assert at.button(key="start_job").disabled
    at.number_input(key="cfg_epochs").set_value(5).run()
    at.number_input(key="cfg_latent").set_value(9).run()
    assert "Latent size 9 is above this server's limit of 8" in at.error[0].value


def test_a_batch_over_the_memory_limit_is_said_on_the_page(no_runs, monkeypatch):
    monkeypatch.setenv("AE_LAB_MAX_BATCH_MB", "1")
    at = train_page(["AE_LAB_MAX_BATCH_MB"], cfg_batch_size=2048)
    assert "AE_LAB_MAX_BATCH_MB" in at.error[0].value and "use a batch of at most" in at.error[0].value
    assert at.button(key="start_job").disabled


def test_an_invalid_run_name_is_said_before_start(no_runs):
    at = train_page(cfg_name="my run!")
    assert "'my run!' is not a valid run name" in " ".join(c.value for c in at.caption)
    assert "saved as my-run" in " ".join(c.value for c in at.caption)
    at.text_input(key="cfg_name").input("fine-name").run()
    assert "not a valid run name" not in " ".join(c.value for c in at.caption)


def test_a_learning_rate_of_0_is_warned_about(no_runs):
    at = train_page(cfg_lr=0.0)
    assert any("nothing will be learnt" in w.value for w in at.warning)
    assert not at.button(key="start_job").disabled  # allowed, but said
    at.number_input(key="cfg_lr").set_value(0.002).run()
    assert not any("nothing will be learnt" in w.value for w in at.warning)


def test_a_start_the_server_refuses_is_one_sentence_not_a_traceback(no_runs, registry, monkeypatch):
    from core.serving.limits import LimitError

    def refuse(cfg, owner=None, info=None, teacher=False):
        raise LimitError("This model would have 5 parameters, above this server's limit of 4 (AE_LAB_MAX_PARAMS); "
                         "use fewer or smaller layers.")

    at = train_page(["above this server's limit"], cfg_epochs=1)
    monkeypatch.setattr(registry, "start", refuse)  # e.g. the teacher lowered a limit meanwhile
    at.button(key="start_job").click().run()
    assert not at.exception
    assert any("above this server's limit" in e.value for e in at.error)


# ---------------------------------------------------------------- the walk's issues: coming back to Train

def finished_digits_job(jobs, name: str) -> str:
    job_id = jobs.start(RunConfig(data=DataConfig(dataset="digits"), name=name,
                                  train=TrainConfig(epochs=1, batch_size=512, device="cpu")))
    assert jobs.wait(job_id, timeout=JOB_TIMEOUT).status == "finished"
    return job_id


def test_a_fresh_tab_shows_the_job_its_list_selects(no_runs, registry):
    """After a reload (no ?job=, nothing started in this session, nothing running) the job list
    selected the newest job but drew nothing under it."""
    older = finished_digits_job(registry, "older")
    newer = finished_digits_job(registry, "newer")
    at = train_page()
    (follow,) = [r for r in at.radio if r.key.startswith("follow_job")]
    assert follow.value == newer
    live = at.main.get_by_key("live_training")
    assert "Saved as run **newer**." in [c.value for c in at.caption]
    assert [s.value for s in at.success] == [registry.snapshot(newer).message]
    assert any("epoch 1/1" in bar.proto.text for bar in at.get("progress"))
    assert chart_frames(live)  # the loss charts are drawn
    follow.set_value(older).run()
    assert "Saved as run **older**." in [c.value for c in at.caption]



@pytest.fixture
def widget_state_warnings(monkeypatch) -> list[str]:
    """What Streamlit logs when a widget gets a value= and also a value set through session state
    ("...created with a default value but also had its value set via the Session State API"); it
    logs that once per process, so the flag is reset for the test."""
    import streamlit.elements.lib.policies as policies

    said: list[str] = []
    monkeypatch.setattr(policies, "_shown_default_value_warning", False)
    monkeypatch.setattr(policies._LOGGER, "warning", lambda message, *args, **kwargs: said.append(message % args))
    return said


def test_the_train_page_sets_no_widget_value_twice(no_runs, registry, widget_state_warnings):
    """The server log had this warning for cfg_batch_size: the page wrote the suggested batch size
    into the widget's session state and passed the widget a value of its own as well."""
    at = train_page()  # a first visit: batch size and epochs start at the data's suggestion
    assert (at.number_input(key="cfg_batch_size").value, at.number_input(key="cfg_epochs").value) == (64, 22)
    at.text_input(key="cfg_name").input("named").run()
    at.button(key="start_job").click().run()  # Start empties the name box
    at.run()
    at.switch_page("views/data.py").run()
    at.session_state[DATA_CONFIG_KEY] = DataConfig(dataset="digits", limit=300)  # another dataset: fitted again
    at.switch_page("views/train.py").run()
    assert not at.exception
    assert at.number_input(key="cfg_batch_size").value != 64 or at.number_input(key="cfg_epochs").value != 22
    assert widget_state_warnings == []


def form_values(at: AppTest) -> dict:
    return {"family": at.radio(key="cfg_family").value, "latent": at.number_input(key="cfg_latent").value,
            "epochs": at.number_input(key="cfg_epochs").value, "batch": at.number_input(key="cfg_batch_size").value,
            "hidden": at.text_input(key="cfg_hidden_small").value, "lr": at.number_input(key="cfg_lr").value,
            "vae": at.checkbox(key="cfg_vae").value, "optimizer": at.selectbox(key="cfg_optimizer").value}


def test_the_form_survives_a_reload_through_its_url(no_runs):
    """The form reset to the defaults on a reload: a reload is a new session, and only the URL
    carries over. The settings a student changed are in it; the ones left alone are not."""
    at = train_page()
    at.radio(key="cfg_family").set_value("dense").run()
    at.text_input(key="cfg_hidden_small").input("64, 32").run()
    at.number_input(key="cfg_latent").set_value(2).run()
    at.number_input(key="cfg_epochs").set_value(5).run()
    at.number_input(key="cfg_lr").set_value(0.01).run()
    at.checkbox(key="cfg_vae").check().run()
    at.selectbox(key="cfg_optimizer").set_value("sgd").run()
    chosen = form_values(at)
    url = dict(at.query_params)
    assert "batch" not in url and "seed" not in url  # left at their defaults: not in the URL
    assert url["latent"] == "2" and url["family"] == "dense"

    reloaded = open_app_page("views/train.py", query=url)
    assert form_values(reloaded) == chosen
    assert shown_parameters(reloaded) == shown_parameters(at)


def test_a_url_with_unusable_form_values_opens_the_defaults(no_runs):
    at = open_app_page("views/train.py", query={"dataset": "digits", "latent": "0", "epochs": "lots",
                                                "family": "transformer", "optimizer": "adam; rm -rf",
                                                "hidden": "1,x", "lr": "nan", "vae": "maybe", "dropout": "0.5"})
    assert at.number_input(key="cfg_latent").value == 16 and at.number_input(key="cfg_epochs").value == 22
    assert at.radio(key="cfg_family").value == "conv" and at.selectbox(key="cfg_optimizer").value == "adam"
    assert at.slider(key="cfg_dropout").value == 0.5  # the one usable value is kept


def test_the_form_offers_the_spatial_code_and_only_its_settings(no_runs, digits):
    """Fully convolutional (spatial code): its own channels box, a note instead of the VAE and
    conditional boxes, and the layer table of the model core builds (pooling, a feature-map code)."""
    at = train_page()
    assert "Fully convolutional (spatial code)" in at.radio(key="cfg_family").options
    at.radio(key="cfg_family").set_value("spatial").run()
    assert not at.exception and not at.error
    assert at.text_input(key="cfg_spatial_channels_small").value == "16, 32, 32"
    keys = {box.key for box in at.checkbox}
    assert "cfg_vae" not in keys and "cfg_conditional" not in keys
    notes = " ".join(c.value for c in at.caption)
    assert "No VAE for this architecture" in notes and "feature map" in notes
    assert shown_parameters(at) == expected_parameters(digits, family="spatial", preset="small")
    table = next(d.value for d in at.dataframe if "Output shape" in d.value.columns)
    assert table["Layer"].str.contains("MaxPool2d").sum() == 2  # 8 px: pooled to 4, then 2, then kept
    assert (table["Layer"].str.startswith("to_latent") & (table["Output shape"] == "16×2×2")).any()
