"""Day two (issue 11): an app's pin changes, then the app leaves the pillar.

On a host of its own converged from pillar.example with omero-figure 7.x:
the pin moves to 8.x (the dry run names the upgrade, the real apply makes
exactly it, one restart); then the app is removed from pillar: its
omero.web.apps entry and its top link go, its package stays; with prune,
the package goes too. Each apply is followed by one that changes nothing.
"""
import pytest

import kitchen
import site_checks
from day_two import installed_version, service_cursor, starts_since

HOST_SUFFIX = "-apps"
FIGURE = {"name": "omero_figure", "package": "omero-figure>=7,<8",
          "config_append": {"omero.web.ui.top_links": [
              ["Figure", "figure_index", {"title": "Open Figure in new tab", "target": "_blank"}]]}}


def pillar_with(apps, prune=False):
    return kitchen.kitchen_pillar({"apps": apps, "prune": prune})


@pytest.fixture(scope="module")
def site(own_host):
    own_host.converge({"apps": [FIGURE]})
    return own_host


def exact_apply(web, pillar):
    """Dry run, then the real apply: equal changes, the service started once; returns the real run."""
    web.write_pillar(pillar)
    web.current, web.pillar = None, pillar["omero_web"]
    dry = web.apply(test=True)
    assert dry.ok, dry.summary()
    cursor = service_cursor(web)
    real = web.apply()
    assert real.ok, real.summary()
    assert sorted(map(real.state_id, dry.predicted)) == sorted(map(real.state_id, real.changed))
    assert starts_since(web, cursor) == 1
    again = web.apply()
    assert again.ok and again.changed == {}, again.summary()
    return dry, real


def top_link_names(web):
    return [link[0] for link in web.config("omero.web.ui.top_links")]


def test_a_new_pin_upgrades_the_app_with_one_restart(site):
    assert installed_version(site, "omero-figure").startswith("7.")
    dry, _ = exact_apply(site, pillar_with([dict(FIGURE, package="omero-figure>=8,<9")]))
    pip = [v for k, v in dry.predicted.items() if "packages_installed" in k][0]
    assert list(pip["changes"]) == ["omero-figure"]
    assert pip["changes"]["omero-figure"]["old"].startswith("7.")
    assert pip["changes"]["omero-figure"]["new"] == "omero-figure>=8,<9"
    assert installed_version(site, "omero-figure").startswith("8.")
    site_checks.figure_app_installed_listed_and_served(site)


def test_removing_the_app_unlists_it_and_prune_uninstalls_it(site):
    site.converge({"apps": [FIGURE]})
    assert "Figure" in top_link_names(site)
    exact_apply(site, pillar_with([]))
    assert "omero_figure" not in site.config("omero.web.apps")
    assert "Figure" not in top_link_names(site)
    assert "Help" in top_link_names(site), "pillar.example's own top link stays"
    assert installed_version(site, "omero-figure") is not None, "removed without prune"
    site_checks.login_page_through_nginx(site)

    # the record still lists the app until an apply forgets it: put it back, then prune
    site.converge({"apps": [FIGURE]})
    _, real = exact_apply(site, pillar_with([], prune=True))
    assert installed_version(site, "omero-figure") is None
    assert any("pip-removed-apps" in key for key in real.changed), sorted(real.changed)
    site_checks.login_page_through_nginx(site)
