-- Times are TIMESTAMP holding UTC (the same column type works on both backends); ids are BIGINT.

CREATE TABLE regions (
    code            TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    name_en         TEXT NOT NULL,
    parent_code     TEXT REFERENCES regions (code),
    level           TEXT NOT NULL CHECK (level IN ('nation', 'province', 'city')),
    macro_region    TEXT,
    nbs_region      TEXT,
    grid_region     TEXT,
    -- Decimal text; NULL inherits the parent's rate (the nation's default is 1 point per gram).
    points_per_gram TEXT
);

-- Ledger accounts, after TigerBeetle: posted and pending totals per side. A floored account (a wallet)
-- may never have more debits (posted + pending) than posted credits; the CHECK makes the database itself
-- refuse an overdraft, whatever the code above it does.
CREATE TABLE accounts (
    id              BIGSERIAL PRIMARY KEY,
    kind            TEXT NOT NULL,
    code            TEXT NOT NULL UNIQUE,
    region_code     TEXT REFERENCES regions (code),
    floored         BOOLEAN NOT NULL,
    debits_posted   BIGINT NOT NULL DEFAULT 0 CHECK (debits_posted >= 0),
    credits_posted  BIGINT NOT NULL DEFAULT 0 CHECK (credits_posted >= 0),
    debits_pending  BIGINT NOT NULL DEFAULT 0 CHECK (debits_pending >= 0),
    credits_pending BIGINT NOT NULL DEFAULT 0 CHECK (credits_pending >= 0),
    created_at      TIMESTAMP NOT NULL,
    CHECK (NOT floored OR debits_posted + debits_pending <= credits_posted)
);

CREATE TABLE users (
    id            BIGSERIAL PRIMARY KEY,
    phone         TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    display_name  TEXT NOT NULL,
    account_type  TEXT NOT NULL CHECK (account_type IN ('individual', 'business')),
    region_code   TEXT NOT NULL REFERENCES regions (code),
    credit_code   TEXT,
    is_admin      BOOLEAN NOT NULL DEFAULT FALSE,
    account_id    BIGINT NOT NULL UNIQUE REFERENCES accounts (id),
    created_at    TIMESTAMP NOT NULL,
    CHECK (account_type = 'individual' OR credit_code IS NOT NULL)
);

-- Refresh tokens are stored only as SHA-256 hashes. Each login starts a family; every refresh uses up
-- one token and adds the next to the family; presenting a used token again revokes the whole family.
CREATE TABLE refresh_tokens (
    id         BIGSERIAL PRIMARY KEY,
    user_id    BIGINT NOT NULL REFERENCES users (id),
    family_id  TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    expires_at TIMESTAMP NOT NULL,
    used_at    TIMESTAMP,
    revoked_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);

-- Keys the service generates on first start when none are configured, shared by every instance and
-- every CLI command on this database.
CREATE TABLE platform_keys (
    name       TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE audit_log (
    id            BIGSERIAL PRIMARY KEY,
    actor_user_id BIGINT REFERENCES users (id),
    action        TEXT NOT NULL,
    entity        TEXT NOT NULL,
    entity_id     TEXT NOT NULL,
    before_json   TEXT,
    after_json    TEXT,
    created_at    TIMESTAMP NOT NULL
);

-- Regions: GB/T 2260 codes, the 31 provinces and the pilot cities.
-- Source: project reference data (regions.csv): macro_region is the NBS three-belt east/central/west split,
-- nbs_region the NBS four-region split since 2011, grid_region the power grid whose emission factor applies.
INSERT INTO regions (code, name, name_en, parent_code, level, macro_region, nbs_region, grid_region) VALUES
  ('CN', '中国', 'China', NULL, 'nation', NULL, NULL, NULL),
  ('110000', '北京', 'Beijing', 'CN', 'province', 'east', 'east', 'north'),
  ('120000', '天津', 'Tianjin', 'CN', 'province', 'east', 'east', 'north'),
  ('130000', '河北', 'Hebei', 'CN', 'province', 'east', 'east', 'north'),
  ('140000', '山西', 'Shanxi', 'CN', 'province', 'central', 'central', 'north'),
  ('150000', '内蒙古', 'Inner Mongolia', 'CN', 'province', 'west', 'west', 'north'),
  ('210000', '辽宁', 'Liaoning', 'CN', 'province', 'east', 'northeast', 'northeast'),
  ('220000', '吉林', 'Jilin', 'CN', 'province', 'central', 'northeast', 'northeast'),
  ('230000', '黑龙江', 'Heilongjiang', 'CN', 'province', 'central', 'northeast', 'northeast'),
  ('310000', '上海', 'Shanghai', 'CN', 'province', 'east', 'east', 'east'),
  ('320000', '江苏', 'Jiangsu', 'CN', 'province', 'east', 'east', 'east'),
  ('330000', '浙江', 'Zhejiang', 'CN', 'province', 'east', 'east', 'east'),
  ('340000', '安徽', 'Anhui', 'CN', 'province', 'central', 'central', 'east'),
  ('350000', '福建', 'Fujian', 'CN', 'province', 'east', 'east', 'east'),
  ('360000', '江西', 'Jiangxi', 'CN', 'province', 'central', 'central', 'central'),
  ('370000', '山东', 'Shandong', 'CN', 'province', 'east', 'east', 'north'),
  ('410000', '河南', 'Henan', 'CN', 'province', 'central', 'central', 'central'),
  ('420000', '湖北', 'Hubei', 'CN', 'province', 'central', 'central', 'central'),
  ('430000', '湖南', 'Hunan', 'CN', 'province', 'central', 'central', 'central'),
  ('440000', '广东', 'Guangdong', 'CN', 'province', 'east', 'east', 'south'),
  ('450000', '广西', 'Guangxi', 'CN', 'province', 'west', 'west', 'south'),
  ('460000', '海南', 'Hainan', 'CN', 'province', 'east', 'east', 'south'),
  ('500000', '重庆', 'Chongqing', 'CN', 'province', 'west', 'west', 'southwest'),
  ('510000', '四川', 'Sichuan', 'CN', 'province', 'west', 'west', 'southwest'),
  ('520000', '贵州', 'Guizhou', 'CN', 'province', 'west', 'west', 'south'),
  ('530000', '云南', 'Yunnan', 'CN', 'province', 'west', 'west', 'south'),
  ('540000', '西藏', 'Tibet', 'CN', 'province', 'west', 'west', 'southwest'),
  ('610000', '陕西', 'Shaanxi', 'CN', 'province', 'west', 'west', 'northwest'),
  ('620000', '甘肃', 'Gansu', 'CN', 'province', 'west', 'west', 'northwest'),
  ('630000', '青海', 'Qinghai', 'CN', 'province', 'west', 'west', 'northwest'),
  ('640000', '宁夏', 'Ningxia', 'CN', 'province', 'west', 'west', 'northwest'),
  ('650000', '新疆', 'Xinjiang', 'CN', 'province', 'west', 'west', 'northwest'),
  ('440100', '广州', 'Guangzhou', '440000', 'city', 'east', 'east', 'south'),
  ('440300', '深圳', 'Shenzhen', '440000', 'city', 'east', 'east', 'south'),
  ('420100', '武汉', 'Wuhan', '420000', 'city', 'central', 'central', 'central'),
  ('510100', '成都', 'Chengdu', '510000', 'city', 'west', 'west', 'southwest'),
  ('510500', '泸州', 'Luzhou', '510000', 'city', 'west', 'west', 'southwest'),
  ('330100', '杭州', 'Hangzhou', '330000', 'city', 'east', 'east', 'east'),
  ('330800', '衢州', 'Quzhou', '330000', 'city', 'east', 'east', 'east'),
  ('410100', '郑州', 'Zhengzhou', '410000', 'city', 'central', 'central', 'central'),
  ('370200', '青岛', 'Qingdao', '370000', 'city', 'east', 'east', 'north'),
  ('371000', '威海', 'Weihai', '370000', 'city', 'east', 'east', 'north');
