"""Demo content, clearly marked as such: a province like Lai Châu. Pure data, no Flask."""
from __future__ import annotations

import random

PROVINCE = "Lai Châu (dữ liệu minh hoạ)"
#: the province's eight district-level units, with bridge points per unit (164 in all).
DISTRICTS = [
    ("Thành phố Lai Châu", 14),
    ("Huyện Tam Đường", 20),
    ("Huyện Phong Thổ", 26),
    ("Huyện Sìn Hồ", 28),
    ("Huyện Mường Tè", 18),
    ("Huyện Than Uyên", 22),
    ("Huyện Tân Uyên", 20),
    ("Huyện Nậm Nhùn", 16),
]
TOPICS = [
    "Chuyên đề 1: Những nội dung cơ bản của Nghị quyết Đại hội Đảng",
    "Chuyên đề 2: Học tập và làm theo tư tưởng, đạo đức, phong cách Hồ Chí Minh",
    "Chuyên đề 3: Xây dựng, chỉnh đốn Đảng và hệ thống chính trị",
    "Chuyên đề 4: Đổi mới căn bản, toàn diện giáo dục và đào tạo",
    "Chuyên đề 5: Chương trình giáo dục phổ thông",
    "Chuyên đề 6: Chuyển đổi số trong giáo dục",
    "Chuyên đề 7: Phát triển kinh tế – xã hội của tỉnh",
    "Chuyên đề 8: Quốc phòng, an ninh và đối ngoại",
    "Chuyên đề 9: Bảo tồn văn hoá các dân tộc",
]
QUESTIONS_PER_TOPIC = [17, 17, 17, 17, 17, 17, 16, 16, 16]  # 150
QUOTAS = [6, 6, 6, 6, 6, 5, 5, 5, 5]  # 50
FAMILY = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Vũ", "Đặng", "Bùi", "Đỗ", "Lò", "Tòng", "Lường", "Giàng", "Sùng", "Vàng", "Lý", "Tao", "Điêu"]
MIDDLE = ["Văn", "Thị", "Minh", "Thu", "Ngọc", "Đức", "Hồng", "Quang", "Thanh", "Xuân", "A", "Seo"]
GIVEN = ["An", "Bình", "Chiến", "Dung", "Giang", "Hà", "Hải", "Hằng", "Hiền", "Hoa", "Hùng", "Hương", "Khánh", "Lan", "Linh", "Long", "Mai", "Nam", "Nga", "Nhung", "Phong", "Phương", "Quân", "Sơn", "Tâm", "Thảo", "Thắng", "Trang", "Tú", "Tuấn", "Vân", "Yến", "Dếnh", "Páo", "Sình"]
LEVELS = ["Mầm non", "Tiểu học", "THCS", "THPT"]


def bridge_points() -> list[tuple[str, str, str]]:
    """(district, code, name) for the 164 demo bridge points."""
    out = []
    for d_index, (district, n) in enumerate(DISTRICTS, start=1):
        for i in range(1, n + 1):
            out.append((district, f"LC{d_index}-{i:02d}", f"Điểm cầu {i:02d} – {district}"))
    return out


def learners(bps: list[tuple[str, str, str]], total: int, seed: int = 2025) -> list[dict]:
    rng = random.Random(seed)
    per_bp = [total // len(bps)] * len(bps)
    for i in range(total - sum(per_bp)):
        per_bp[i] += 1
    out = []
    n = 0
    for (district, code, _name), count in zip(bps, per_bp):
        for seat in range(1, count + 1):
            n += 1
            level = LEVELS[rng.randrange(len(LEVELS))]
            out.append({
                "full_name": f"{rng.choice(FAMILY)} {rng.choice(MIDDLE)} {rng.choice(GIVEN)}",
                "personal_code": f"GV{n:05d}",
                "unit": f"Trường {level} số {rng.randint(1, 9)}, {district.replace('Huyện ', 'huyện ')}",
                "bridge_point_code": code,
                "seat": seat,
            })
    return out


def questions(seed: int = 7) -> list[tuple[str, str, list[str], int]]:
    """(topic, stem, choices, index of the right one); every stem says it is a demo."""
    rng = random.Random(seed)
    out = []
    for t_index, (topic, n) in enumerate(zip(TOPICS, QUESTIONS_PER_TOPIC), start=1):
        short = topic.split(": ", 1)[1]
        for q in range(1, n + 1):
            stem = (f"[Câu hỏi minh hoạ {t_index}.{q}] Theo tài liệu “{short}”, "
                    f"nội dung nào sau đây là đúng với ý số {q} của chuyên đề?")
            right = f"Nội dung đúng của ý {q} (minh hoạ)"
            wrong = [f"Nội dung chưa chính xác {k} của ý {q} (minh hoạ)" for k in (1, 2, 3)]
            choices = wrong[:]
            pos = rng.randrange(4)
            choices.insert(pos, right)
            out.append((topic, stem, choices, pos))
    return out


STAFF = [
    # (role, username, password, full name, district or None, bridge point code or None)
    ("organizer", "bantochuc", "demo-lai-chau", "Ban Tổ chức tỉnh (minh hoạ)", None, None),
    ("organizer", "bantochuc-tamduong", "demo-lai-chau", "Ban Tổ chức huyện Tam Đường (minh hoạ)", "Huyện Tam Đường", None),
    ("proctor", "giamthi", "demo-lai-chau", "Giám thị tỉnh (minh hoạ)", None, None),
    ("rapporteur", "baocaovien", "demo-lai-chau", "Báo cáo viên (minh hoạ)", None, None),
    ("operator", "kythuat-lc1-01", "demo-lai-chau", "Kỹ thuật điểm cầu LC1-01 (minh hoạ)", None, "LC1-01"),
]
