-- Grid emission factors (g CO2 per kWh) by grid region and year. Source: MEE/NBS average grid emission
-- factors (电力平均二氧化碳排放因子), project reference data grid_factors.csv; each row carries its source.
CREATE TABLE grid_factors (
    grid_region TEXT NOT NULL,
    year        INTEGER NOT NULL,
    g_per_kwh   TEXT NOT NULL,
    source      TEXT NOT NULL,
    PRIMARY KEY (grid_region, year)
);

INSERT INTO grid_factors (grid_region, year, g_per_kwh, source) VALUES
  ('national', 2021, '556.8', 'MEE/NBS average grid emission factor (电力平均二氧化碳排放因子); MEE/NBS 2021-2022 electricity CO2 emission factors announcement (daydaynews.cc/zh-hant/finance/3899452.html repost)'),
  ('national', 2022, '536.6', 'MEE/NBS average grid emission factor; same announcement'),
  ('north', 2022, '677.6', 'MEE/NBS regional average (华北); same announcement'),
  ('northeast', 2022, '556.4', 'MEE/NBS regional average (东北); same announcement'),
  ('east', 2022, '561.7', 'MEE/NBS regional average (华东); same announcement'),
  ('central', 2022, '539.5', 'MEE/NBS regional average (华中); same announcement'),
  ('northwest', 2022, '585.7', 'MEE/NBS regional average (西北); same announcement'),
  ('south', 2022, '386.9', 'MEE/NBS regional average (南方); same announcement'),
  ('southwest', 2022, '226.8', 'MEE/NBS regional average (西南); same announcement'),
  ('national', 2023, '530.6', 'MEE/NBS average grid emission factor; MEE/NBS 2023 electricity CO2 emission factors (163.com/dy/article/KIQVBKCG05567I2C.html repost)'),
  ('north', 2023, '636.1', 'MEE/NBS regional average (华北); same'),
  ('northeast', 2023, '512.2', 'MEE/NBS regional average (东北); same'),
  ('east', 2023, '550.0', 'MEE/NBS regional average (华东); same'),
  ('central', 2023, '527.1', 'MEE/NBS regional average (华中); same'),
  ('northwest', 2023, '554.3', 'MEE/NBS regional average (西北); same'),
  ('south', 2023, '404.2', 'MEE/NBS regional average (南方); same'),
  ('southwest', 2023, '247.2', 'MEE/NBS regional average (西南); same');

-- Activity types and the schema of their data. Admins add types without a code change.
CREATE TABLE activity_types (
    code              TEXT PRIMARY KEY,
    name              TEXT NOT NULL,
    unit              TEXT NOT NULL,
    data_schema       TEXT NOT NULL,
    -- Events older than this many days are stored as rejected (late); Beijing MaaS closes claims after 7.
    claim_window_days INTEGER NOT NULL DEFAULT 7,
    created_at        TIMESTAMP NOT NULL
);

INSERT INTO activity_types (code, name, unit, data_schema, claim_window_days, created_at) VALUES
  ('walking', '步行', 'km', '{"type":"object","properties":{"distance_m":{"type":"integer","minimum":1,"maximum":100000},"duration_s":{"type":"integer","minimum":1,"maximum":86400},"steps":{"type":"integer","minimum":1,"maximum":200000}},"required":["distance_m"]}', 7, '2026-11-28 00:00:00'),
  ('cycling.bikeshare', '共享单车', 'km', '{"type":"object","properties":{"distance_m":{"type":"integer","minimum":1,"maximum":200000},"duration_s":{"type":"integer","minimum":1,"maximum":86400}},"required":["distance_m"]}', 7, '2026-11-28 00:00:00'),
  ('transit.bus', '公交', 'ride', '{"type":"object","properties":{"count":{"type":"integer","minimum":1,"maximum":50},"distance_m":{"type":"integer","minimum":1,"maximum":300000},"duration_s":{"type":"integer","minimum":1,"maximum":86400}},"required":[]}', 7, '2026-11-28 00:00:00'),
  ('transit.metro', '地铁', 'ride', '{"type":"object","properties":{"count":{"type":"integer","minimum":1,"maximum":50},"distance_m":{"type":"integer","minimum":1,"maximum":300000},"duration_s":{"type":"integer","minimum":1,"maximum":86400}},"required":[]}', 7, '2026-11-28 00:00:00'),
  ('electricity.saving', '节约用电', 'kWh', '{"type":"object","properties":{"kwh":{"type":"number","minimum":0,"maximum":100000}},"required":["kwh"]}', 7, '2026-11-28 00:00:00'),
  ('waste.sorting', '垃圾分类', 'kg', '{"type":"object","properties":{"mass_g":{"type":"integer","minimum":1,"maximum":10000000}},"required":["mass_g"]}', 7, '2026-11-28 00:00:00'),
  ('waste.textile', '旧衣回收', 'kg', '{"type":"object","properties":{"mass_g":{"type":"integer","minimum":1,"maximum":10000000}},"required":["mass_g"]}', 7, '2026-11-28 00:00:00'),
  ('secondhand.phone', '二手手机回收', 'phone', '{"type":"object","properties":{"count":{"type":"integer","minimum":1,"maximum":100}},"required":["count"]}', 7, '2026-11-28 00:00:00');

-- Methodology versions: (activity type, region, version), effective-dated, draft ▸ active ▸ retired.
-- A stored activity keeps the id of the version that quantified it, so it can always be recomputed.
CREATE TABLE methodology_versions (
    id               BIGSERIAL PRIMARY KEY,
    activity_type    TEXT NOT NULL REFERENCES activity_types (code),
    region_code      TEXT NOT NULL REFERENCES regions (code),
    version          INTEGER NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('draft', 'active', 'retired')),
    effective_from   TIMESTAMP NOT NULL,
    effective_to     TIMESTAMP,
    -- {NAME: {"value": "decimal", "unit": …, "source": …}}
    parameters       TEXT NOT NULL,
    formula          TEXT NOT NULL,
    daily_cap_g      BIGINT CHECK (daily_cap_g IS NULL OR daily_cap_g >= 0),
    -- {"operator": "1.0", "trace": "1.0", "photo": "0.7", "self_report": "0.5"}
    evidence_weights TEXT NOT NULL,
    citation         TEXT NOT NULL,
    drafted_by       BIGINT REFERENCES users (id),
    approved_by      BIGINT REFERENCES users (id),
    created_at       TIMESTAMP NOT NULL,
    activated_at     TIMESTAMP,
    retired_at       TIMESTAMP,
    UNIQUE (activity_type, region_code, version),
    CHECK (effective_to IS NULL OR effective_to > effective_from)
);
CREATE INDEX methodology_versions_lookup ON methodology_versions (activity_type, region_code, status);

-- Bumped in every transaction that changes what quantification sees; each instance polls it to refresh
-- its in-process catalog.
CREATE TABLE catalog_epoch (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    epoch BIGINT NOT NULL
);
INSERT INTO catalog_epoch (id, epoch) VALUES (1, 1);

-- Seed versions from the project reference data (methodologies.csv); dates are 00:00 Asia/Shanghai, stored
-- in UTC. Each version cites its source; Wuhan's 2023 and 2024 versions split time at 2024-08-01.
INSERT INTO methodology_versions (activity_type, region_code, version, status, effective_from, effective_to,
    parameters, formula, daily_cap_g, evidence_weights, citation, created_at, activated_at) VALUES
  ('walking', 'CN', 1, 'active', '2022-12-31 16:00:00', NULL, '{"walk_g_per_km":{"value":"28.6","unit":"g/km","source":"Ant Forest: 10000 steps ~ 200 g at ~7 km; Ant Forest figures: news.cgtn.com/news/3d3d514f3163444d34457a6333566d54; walking cap 296 g/day: 58z.net/z/1928863280062189947.html"}}', 'distance_m / 1000 * walk_g_per_km', 296, '{"operator":"1.0","trace":"1.0","photo":"0.7","self_report":"0.5"}', 'Ant Forest figures: news.cgtn.com/news/3d3d514f3163444d34457a6333566d54; walking cap 296 g/day: 58z.net/z/1928863280062189947.html', '2026-11-28 00:00:00', '2026-11-28 00:00:00'),
  ('cycling.bikeshare', 'CN', 1, 'active', '2022-12-31 16:00:00', NULL, '{"bike_g_per_km":{"value":"40","unit":"g/km","source":"Wuhan 2024 revision, used as the conservative national default; hb.people.com.cn/BIG5/n2/2024/0806/c192237-40935117.html"}}', 'distance_m / 1000 * bike_g_per_km', NULL, '{"operator":"1.0","trace":"1.0","photo":"0.7","self_report":"0.5"}', 'hb.people.com.cn/BIG5/n2/2024/0806/c192237-40935117.html', '2026-11-28 00:00:00', '2026-11-28 00:00:00'),
  ('transit.bus', 'CN', 1, 'active', '2022-12-31 16:00:00', NULL, '{"bus_g_per_ride":{"value":"80","unit":"g/ride","source":"Luzhou 绿芽积分 (bus ride 80 g): 光明日报 2024 via gaoheng.wineast.net"}}', 'count * bus_g_per_ride', NULL, '{"operator":"1.0","trace":"1.0","photo":"0.7","self_report":"0.5"}', 'Luzhou 绿芽积分 (bus ride 80 g): 光明日报 2024 via gaoheng.wineast.net', '2026-11-28 00:00:00', '2026-11-28 00:00:00'),
  ('transit.metro', 'CN', 1, 'active', '2022-12-31 16:00:00', NULL, '{"metro_saving_g_per_pkm":{"value":"46.7","unit":"g/pkm","source":"the most conservative published city figure, Shenzhen, as the national default; a car-only baseline such as Beijing''s 272 vs 61 g/pkm would credit 4-5x more; citysz.net/guonei/2022/0923/2022107136.html; comparison: news.hlgnet.com/info/17600"}}', 'distance_m / 1000 * metro_saving_g_per_pkm', NULL, '{"operator":"1.0","trace":"1.0","photo":"0.7","self_report":"0.5"}', 'citysz.net/guonei/2022/0923/2022107136.html; comparison: news.hlgnet.com/info/17600', '2026-11-28 00:00:00', '2026-11-28 00:00:00'),
  ('transit.metro', '440300', 1, 'active', '2022-08-31 16:00:00', NULL, '{"metro_saving_g_per_pkm":{"value":"46.7","unit":"g/pkm","source":"Shenzhen: citysz.net/guonei/2022/0923/2022107136.html"}}', 'distance_m / 1000 * metro_saving_g_per_pkm', NULL, '{"operator":"1.0","trace":"1.0","photo":"0.7","self_report":"0.5"}', 'Shenzhen: citysz.net/guonei/2022/0923/2022107136.html', '2026-11-28 00:00:00', '2026-11-28 00:00:00'),
  ('transit.bus', '440300', 1, 'active', '2022-08-31 16:00:00', NULL, '{"ebus_saving_g_per_pkm":{"value":"26.9","unit":"g/pkm","source":"Shenzhen: citysz.net/guonei/2022/0923/2022107136.html"}}', 'distance_m / 1000 * ebus_saving_g_per_pkm', NULL, '{"operator":"1.0","trace":"1.0","photo":"0.7","self_report":"0.5"}', 'Shenzhen: citysz.net/guonei/2022/0923/2022107136.html', '2026-11-28 00:00:00', '2026-11-28 00:00:00'),
  ('transit.metro', '420100', 1, 'active', '2023-05-31 16:00:00', '2024-07-31 16:00:00', '{"metro_g_per_km":{"value":"78.4","unit":"g/km","source":"Wuhan 武碳江湖 2023: news.43u.com.cn/a/2161699.html"}}', 'distance_m / 1000 * metro_g_per_km', NULL, '{"operator":"1.0","trace":"1.0","photo":"0.7","self_report":"0.5"}', 'Wuhan 武碳江湖 2023: news.43u.com.cn/a/2161699.html', '2026-11-28 00:00:00', '2026-11-28 00:00:00'),
  ('cycling.bikeshare', '420100', 1, 'active', '2023-05-31 16:00:00', '2024-07-31 16:00:00', '{"bike_g_per_km":{"value":"93.3","unit":"g/km","source":"Wuhan 2023: news.43u.com.cn/a/2161699.html"}}', 'distance_m / 1000 * bike_g_per_km', NULL, '{"operator":"1.0","trace":"1.0","photo":"0.7","self_report":"0.5"}', 'Wuhan 2023: news.43u.com.cn/a/2161699.html', '2026-11-28 00:00:00', '2026-11-28 00:00:00'),
  ('transit.metro', '420100', 2, 'active', '2024-07-31 16:00:00', NULL, '{"metro_g_per_ride":{"value":"170","unit":"g/ride","source":"Wuhan 2024 revision: hb.people.com.cn/BIG5/n2/2024/0806/c192237-40935117.html"}}', 'count * metro_g_per_ride', NULL, '{"operator":"1.0","trace":"1.0","photo":"0.7","self_report":"0.5"}', 'Wuhan 2024 revision: hb.people.com.cn/BIG5/n2/2024/0806/c192237-40935117.html', '2026-11-28 00:00:00', '2026-11-28 00:00:00'),
  ('cycling.bikeshare', '420100', 2, 'active', '2024-07-31 16:00:00', NULL, '{"bike_g_per_km":{"value":"40","unit":"g/km","source":"Wuhan 2024 revision: hb.people.com.cn/BIG5/n2/2024/0806/c192237-40935117.html"}}', 'distance_m / 1000 * bike_g_per_km', NULL, '{"operator":"1.0","trace":"1.0","photo":"0.7","self_report":"0.5"}', 'Wuhan 2024 revision: hb.people.com.cn/BIG5/n2/2024/0806/c192237-40935117.html', '2026-11-28 00:00:00', '2026-11-28 00:00:00'),
  ('electricity.saving', 'CN', 1, 'active', '2022-12-31 16:00:00', NULL, '{}', 'kwh * region.grid_ef_g_per_kwh', NULL, '{"operator":"1.0","trace":"1.0","photo":"0.7","self_report":"0.5"}', 'MEE/NBS grid factors, see grid_factors.csv', '2026-11-28 00:00:00', '2026-11-28 00:00:00'),
  ('electricity.saving', '420100', 1, 'active', '2023-05-31 16:00:00', NULL, '{"wuhan_g_per_kwh":{"value":"525","unit":"g/kWh","source":"Wuhan 武碳江湖: news.43u.com.cn/a/2161699.html"}}', 'kwh * wuhan_g_per_kwh', NULL, '{"operator":"1.0","trace":"1.0","photo":"0.7","self_report":"0.5"}', 'Wuhan 武碳江湖: news.43u.com.cn/a/2161699.html', '2026-11-28 00:00:00', '2026-11-28 00:00:00'),
  ('waste.sorting', 'CN', 1, 'active', '2022-12-31 16:00:00', NULL, '{"sorted_vs_incinerated_g_per_kg":{"value":"100","unit":"g/kg","source":"Qingdao LCA: sorted+AD+recycling -230 vs mixed+incineration -130 kgCO2/t; hjkx.ac.cn/hjkx/ch/html/20230556.htm"}}', 'mass_g / 1000 * sorted_vs_incinerated_g_per_kg', NULL, '{"operator":"1.0","trace":"1.0","photo":"0.7","self_report":"0.5"}', 'hjkx.ac.cn/hjkx/ch/html/20230556.htm', '2026-11-28 00:00:00', '2026-11-28 00:00:00'),
  ('waste.textile', 'CN', 1, 'active', '2022-12-31 16:00:00', NULL, '{"textile_g_per_kg":{"value":"1280","unit":"g/kg","source":"Luzhou; BIR 2008 gives 3600; gaoheng.wineast.net (Luzhou); reibang.com/p/43c5027bf83c"}}', 'mass_g / 1000 * textile_g_per_kg', NULL, '{"operator":"1.0","trace":"1.0","photo":"0.7","self_report":"0.5"}', 'gaoheng.wineast.net (Luzhou); reibang.com/p/43c5027bf83c', '2026-11-28 00:00:00', '2026-11-28 00:00:00'),
  ('secondhand.phone', 'CN', 1, 'active', '2022-12-31 16:00:00', NULL, '{"phone_g":{"value":"25000","unit":"g/phone","source":"scholarmate.com/S/afPYNf"}}', 'count * phone_g', NULL, '{"operator":"1.0","trace":"1.0","photo":"0.7","self_report":"0.5"}', 'scholarmate.com/S/afPYNf', '2026-11-28 00:00:00', '2026-11-28 00:00:00');
