from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import PasswordField, StringField, SubmitField
from wtforms.validators import DataRequired, Length


class StaffLoginForm(FlaskForm):
    username = StringField(_l("Tên đăng nhập"), validators=[DataRequired(), Length(max=80)])
    password = PasswordField(_l("Mật khẩu"), validators=[DataRequired(), Length(max=200)])
    submit = SubmitField(_l("Đăng nhập"))


class LearnerLoginForm(FlaskForm):
    personal_code = StringField(_l("Mã cá nhân"), validators=[DataRequired(), Length(max=40)])
    submit = SubmitField(_l("Vào thi"))


class RosterImportForm(FlaskForm):
    file = FileField(_l("Tệp danh sách (.xlsx hoặc .csv)"), validators=[FileRequired()])
    submit = SubmitField(_l("Kiểm tra và nhập"))
